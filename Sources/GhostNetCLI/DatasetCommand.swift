// `ghostnet-d dataset check|synth`: check an ImageNet-layout dataset, or write the synthetic demo one.

import ArgumentParser
import ImageData
import TensorEngine

/// `ghostnet-d dataset`: inspect an ImageNet-layout dataset or write the built-in demo one.
struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Check an ImageNet-layout dataset, or write the synthetic demo dataset.",
        subcommands: [Check.self, Synth.self])
}

extension DatasetSplit {
    var displayName: String { self == .train ? "train" : "val" }
}

extension DatasetCommand {
    /// `ghostnet-d dataset check DATA_PATH`.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Print classes and image counts, and decode-check every image.",
            discussion: """
                DATA_PATH must hold train/<wnid>/*.JPEG and val/, either as class folders or flat \
                (val/ILSVRC2012_val_*.JPEG) with LOC_val_solution.csv in DATA_PATH or its parent. \
                Exits non-zero when the layout is broken or an image cannot be decoded.
                """)

        @Argument(help: "The dataset root holding train/ and val/.")
        var dataPath: String

        @Option(
            parsing: .unconditional, help: "Decode-check only every N-th image of each split (1-1000000; 1 checks all)."
        )
        var sampleEvery: Int = 1

        @Flag(help: "Skip decoding; check only the folder layout and labels.")
        var layoutOnly = false

        @Option(
            help: ArgumentHelp(
                "The folder for the cached file index "
                    + "(default: $GHOSTNET_CACHE_DIR, $XDG_CACHE_HOME/ghostnet-d or ~/.cache/ghostnet-d).")
        )
        var cacheDir: String?

        func validate() throws {
            try OptionRange.check("--sample-every", sampleEvery, 1...1_000_000)
        }

        func run() throws {
            let (index, fromCache) = try DatasetIndex.load(
                dataPath: dataPath, cache: .directory(cacheDir ?? IndexCache.defaultDirectory))
            print("dataset \(index.root)\(fromCache ? " (index from cache)" : "")")
            let names = index.classNames
            print("classes: \(names.count) (\(names.first!) … \(names.last!))")
            switch index.validationLayout {
            case .classFolders: print("val layout: class folders")
            case .flat(let labelsFile): print("val layout: flat, labels from \(labelsFile)")
            }
            for split in DatasetSplit.allCases {
                let images = index[split]
                var perClass = [Int](repeating: 0, count: names.count)
                for label in images.labels { perClass[Int(label)] += 1 }
                print(
                    "\(split.displayName): \(images.count) images, \(perClass.min()!)-\(perClass.max()!) per class, "
                        + "\(images.ignoredFileCount) ignored files"
                )
                for example in images.ignoredExamples { print("  ignored: \(example)") }
            }
            guard !layoutOnly else { return }

            var lastShown = -1
            let report = DatasetCheck.decodeAll(index, sampleEvery: sampleEvery) { checked, total in
                let percent = total == 0 ? 100 : checked * 100 / total
                if percent / 10 != lastShown || checked == total {
                    lastShown = percent / 10
                    StandardError.print("decoded \(checked)/\(total)")
                }
            }
            print("decode-checked \(report.checkedFiles) images: \(report.badImages.count) unreadable")
            for error in report.badImages { print("  unreadable: \(error)") }
            if !report.badImages.isEmpty { throw ExitCode.failure }
        }
    }

    /// `ghostnet-d dataset synth --out DIR`.
    struct Synth: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "synth",
            abstract: "Write a synthetic ImageNet-layout dataset of real JPEG files.",
            discussion: """
                Class c is shape (c mod 10) in a hue of its own at a random position and scale over a noisy \
                background; sizes vary from 100 to 500 px; some files are grayscale, progressive or \
                Adobe CMYK. Classes are named n00000000, n00000001, … The output depends only on the options.
                """)

        @Option(help: "The folder to write train/ and val/ into.")
        var out: String

        @Option(parsing: .unconditional, help: "Number of classes (1-10000).")
        var classes: Int = 10

        @Option(parsing: .unconditional, help: "Training images per class (1-100000).")
        var trainPerClass: Int = 100

        @Option(parsing: .unconditional, help: "Validation images per class (0-100000).")
        var valPerClass: Int = 20

        @Option(parsing: .unconditional, help: "Seed of every random choice (0-\(UInt64.max)).")
        var seed: UInt64 = 0

        @Option(help: "Validation layout: folders (val/<wnid>/) or flat (val/*.JPEG + LOC_val_solution.csv).")
        var valLayout: SyntheticDataset.ValidationLayoutKind = .folders

        @Option(help: "Give every image this size, WIDTHxHEIGHT (e.g. 500x375 for benchmarks).")
        var fixedSize: String?

        func validate() throws {
            try OptionRange.check("--classes", classes, 1...10_000)
            try OptionRange.check("--train-per-class", trainPerClass, 1...100_000)
            try OptionRange.check("--val-per-class", valPerClass, 0...100_000)
            _ = try parsedFixedSize()
        }

        private func parsedFixedSize() throws -> (width: Int, height: Int)? {
            guard let fixedSize else { return nil }
            let parts = fixedSize.lowercased().split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, (1...30_000).contains(parts[0]), (1...30_000).contains(parts[1]) else {
                throw ValidationError("--fixed-size must be WIDTHxHEIGHT with sides 1-30000, got \(fixedSize)")
            }
            return (parts[0], parts[1])
        }

        func run() throws {
            let configuration = SyntheticDataset.Configuration(
                classes: classes, trainPerClass: trainPerClass, validationPerClass: valPerClass, seed: seed,
                validationLayout: valLayout, fixedSize: try parsedFixedSize())
            let summary = try SyntheticDataset.write(to: out, configuration: configuration)
            print(
                "wrote \(summary.trainImages) train and \(summary.validationImages) val JPEGs in \(classes) classes "
                    + "to \(out)"
            )
            print(
                "grayscale \(summary.grayscaleImages), progressive \(summary.progressiveImages), CMYK "
                    + "\(summary.cmykImages), \(summary.bytes / 1024) KiB"
            )
        }
    }
}

extension SyntheticDataset.ValidationLayoutKind: ExpressibleByArgument {}
