// The text of a network's size: parameter and multiply-accumulate counts in the reference record's
// format, and the table `ghostnet-d model summary` prints.

extension GhostNetStructure {
    /// Trainable parameters in thousands with three decimals, the reference record's `params`
    /// field: `38216.872` for ghostnet101.
    package var parametersInThousands: String { Self.decimal(parameterCount, unit: 1_000, digits: 3) }

    /// Multiply-accumulates per image in billions, rounded to three decimals, the reference
    /// record's `flops` field (PyTorch back-end convention): `4.539` for ghostnet101 at 224.
    package var multiplyAccumulatesInBillions: String {
        Self.decimal((multiplyAccumulates + 500_000) / 1_000_000 * 1_000_000, unit: 1_000_000_000, digits: 3)
    }

    /// A human-readable table of ``summary`` with totals and the record fields, as printed by
    /// `ghostnet-d model summary`.
    package var report: String {
        let configuration = configuration
        let size = configuration.imageSize
        var lines = [
            "\(configuration.architectureName): blocks \(configuration.blocksText), "
                + "width \(configuration.width), \(configuration.classes) classes, "
                + "input \(Self.imageChannels)×\(size)×\(size)",
            row("part", "output shape", "parameters", "MACs"),
        ]
        for part in summary {
            lines.append(
                row(
                    part.name, part.outputShape.map(String.init).joined(separator: "×"),
                    Self.grouped(part.parameterCount), Self.grouped(part.multiplyAccumulates)))
        }
        lines.append(row("total", "", Self.grouped(parameterCount), Self.grouped(multiplyAccumulates)))
        lines.append("params (K): \(parametersInThousands)")
        lines.append("flops (G): \(multiplyAccumulatesInBillions)")
        return lines.joined(separator: "\n")
    }

    private func row(_ name: String, _ shape: String, _ parameters: String, _ macs: String) -> String {
        func padded(_ text: String, _ width: Int, leading: Bool) -> String {
            let fill = String(repeating: " ", count: max(0, width - text.count))
            return leading ? fill + text : text + fill
        }
        return padded(name, 8, leading: false) + padded(shape, 16, leading: false)
            + padded(parameters, 14, leading: true) + padded(macs, 18, leading: true)
    }

    /// `value / unit` with `digits` decimals, exact when `unit` is a power of ten ≥ 10^digits.
    private static func decimal(_ value: Int, unit: Int, digits: Int) -> String {
        var scale = 1
        for _ in 0..<digits { scale *= 10 }
        let scaled = value / (unit / scale)
        let fraction = String(scaled % scale)
        return "\(scaled / scale)." + String(repeating: "0", count: digits - fraction.count) + fraction
    }

    /// `value` with thousands separators, e.g. `38,216,872`.
    private static func grouped(_ value: Int) -> String {
        var digits = Array(String(value))
        var index = digits.count - 3
        while index > 0 {
            digits.insert(",", at: index)
            index -= 3
        }
        return String(digits)
    }
}
