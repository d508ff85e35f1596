//===----------------------------------------------------------------------===//
// ghostnet-d — Training
//===----------------------------------------------------------------------===//

/// Bounds on a numeric configuration value, each end open, closed or absent.
struct NumericBounds: Sendable, CustomStringConvertible {
    var lower: Double?
    var lowerInclusive = true
    var upper: Double?
    var upperInclusive = true

    static func atLeast(_ value: Double) -> NumericBounds { NumericBounds(lower: value) }
    static func greaterThan(_ value: Double) -> NumericBounds { NumericBounds(lower: value, lowerInclusive: false) }
    /// [0, 1)
    static let unitHalfOpen = NumericBounds(lower: 0, upper: 1, upperInclusive: false)

    func contains(_ value: Double) -> Bool {
        if let lower, lowerInclusive ? value < lower : value <= lower { return false }
        if let upper, upperInclusive ? value > upper : value >= upper { return false }
        return value.isFinite
    }

    var description: String {
        switch (lower, upper) {
        case (let lower?, let upper?):
            "in \(lowerInclusive ? "[" : "(")\(Self.format(lower)), \(Self.format(upper))\(upperInclusive ? "]" : ")")"
        case (let lower?, nil): "\(lowerInclusive ? ">=" : ">") \(Self.format(lower))"
        case (nil, let upper?): "\(upperInclusive ? "<=" : "<") \(Self.format(upper))"
        case (nil, nil): "finite"
        }
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? "\(Int(value))" : "\(value)"
    }
}

/// How a text value is checked and normalised.
enum TextForm: Sendable {
    /// Any non-empty text.
    case plain
    /// One of `choices`. With `lastPathComponent`, a path-qualified spelling such as the seed's
    /// `./src/ghostnet_d.ghostnet101` is reduced to its last component first.
    case choice([String], lastPathComponent: Bool = false)
    /// A file-system path; relative paths are made absolute against the current directory.
    case path
    /// An `http://host:port[/path]` URL.
    case httpURL
}

/// What a key holds.
indirect enum SchemaKind: Sendable {
    case section([SchemaKey])
    case boolean
    case integer(NumericBounds)
    case real(NumericBounds)
    case text(TextForm)
    /// A flow or block list of integers, each within the bounds, optionally of a fixed length.
    case integerList(NumericBounds, count: Int?)
    /// A list of texts, each one of `choices` when given.
    case textList(choices: [String]?)

    /// What a value of this kind looks like, for "expected …" messages.
    var expectation: String {
        switch self {
        case .section: "a mapping of keys"
        case .boolean: "True or False"
        case .integer(let bounds): "an integer \(bounds)"
        case .real(let bounds): "a number \(bounds)"
        case .text(.plain): "a non-empty text"
        case .text(.choice(let choices, _)): "one of \(choices.joined(separator: ", "))"
        case .text(.path): "a file-system path"
        case .text(.httpURL): "an http://host:port URL"
        case .integerList(let bounds, let count):
            "a list of \(count.map { "\($0) " } ?? "")integers \(bounds), e.g. [3, 4, 6, 3]"
        case .textList(let choices?): "a list of: \(choices.joined(separator: ", "))"
        case .textList(nil): "a list of texts"
        }
    }
}

/// The value a key takes when the file does not give it.
enum DefaultValue: Sendable {
    case value(ConfigurationValue)
    /// The file must give the key.
    case required
    /// The key stays `null` (for a section: it is left out) unless given.
    case absent
    /// Computed from other keys after validation; the text says from what.
    case derived(String)
}

/// One key of the configuration schema.
struct SchemaKey: Sendable {
    let name: String
    let kind: SchemaKind
    let defaultValue: DefaultValue

    init(_ name: String, _ kind: SchemaKind, _ defaultValue: DefaultValue) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
    }

    /// A section that is always present, filled with its defaults.
    static func section(_ name: String, _ keys: [SchemaKey]) -> SchemaKey {
        SchemaKey(name, .section(keys), .value(.absent))
    }
}

/// The keys of a configuration file: the seed's structure plus our `runtime` section.
enum ConfigurationSchema {
    static let modelTypes = ["ghostnet_d.ghostnet101", "ghostnet_d.ghostnet50"]
    static let pipelineSteps = ["fully_train", "eval"]

    /// One pipeline step (`fully_train` or `eval`): the seed's pipe_step, model, trainer and dataset.
    static let step: [SchemaKey] = [
        .section("pipe_step", [
            SchemaKey("type", .text(.choice(["TrainPipeStep"])), .value(.text("TrainPipeStep"))),
            SchemaKey("models_folder", .text(.path), .absent),
        ]),
        .section("model", [
            .section("model_desc", [
                SchemaKey("type", .text(.choice(modelTypes, lastPathComponent: true)), .required),
                SchemaKey("width", .integer(.atLeast(1)), .value(.integer(64))),
                SchemaKey("num_classes", .integer(.atLeast(2)), .derived("dataset.common.n_class")),
                SchemaKey("image_size", .integer(.atLeast(8)), .value(.integer(224))),
                SchemaKey("blocks", .integerList(.atLeast(2), count: 4), .derived("the model type")),
            ]),
        ]),
        .section("trainer", [
            SchemaKey("type", .text(.choice(["Trainer"])), .value(.text("Trainer"))),
            SchemaKey("epochs", .integer(.atLeast(1)), .value(.integer(120))),
            SchemaKey("mixup", .boolean, .value(.boolean(false))),
            SchemaKey("mixup_alpha", .real(.greaterThan(0)), .value(.real(0.2))),
            SchemaKey("label_smoothing", .real(.unitHalfOpen), .value(.real(0))),
            SchemaKey("warmup_epochs", .integer(.atLeast(0)), .value(.integer(0))),
            .section("optimizer", [
                SchemaKey("type", .text(.choice(["SGD"])), .value(.text("SGD"))),
                .section("params", [
                    SchemaKey("lr", .real(.greaterThan(0)), .value(.real(0.001))),
                    SchemaKey("momentum", .real(.unitHalfOpen), .value(.real(0.9))),
                    SchemaKey("weight_decay", .real(.atLeast(0)), .value(.real(0.0001))),
                    SchemaKey("no_weight_decay", .textList(choices: nil), .value(.list([]))),
                ]),
            ]),
            .section("lr_scheduler", [
                SchemaKey("type", .text(.choice(["CosineAnnealingLR"])), .value(.text("CosineAnnealingLR"))),
                SchemaKey("by_epoch", .boolean, .value(.boolean(true))),
                .section("params", [
                    SchemaKey("T_max", .integer(.atLeast(1)), .derived("trainer.epochs")),
                    SchemaKey("eta_min", .real(.atLeast(0)), .value(.real(0))),
                ]),
            ]),
            .section("loss", [
                SchemaKey("type", .text(.choice(["CrossEntropyLoss"])), .value(.text("CrossEntropyLoss"))),
                .section("params", [
                    SchemaKey("sparse", .boolean, .value(.boolean(true))),
                ]),
            ]),
        ]),
        .section("dataset", [
            SchemaKey("type", .text(.choice(["Imagenet"])), .value(.text("Imagenet"))),
            .section("common", [
                SchemaKey("data_path", .text(.path), .required),
                SchemaKey("batch_size", .integer(.atLeast(1)), .value(.integer(128))),
                SchemaKey("n_class", .integer(.atLeast(2)), .value(.integer(1000))),
                SchemaKey("workers", .integer(.atLeast(0)), .value(.integer(0))),
                SchemaKey("image_size", .integer(.atLeast(8)), .derived("model.model_desc.image_size")),
            ]),
            .section("train", [
                SchemaKey("color_jitter", .boolean, .value(.boolean(false))),
                SchemaKey("drop_last", .boolean, .value(.boolean(false))),
                SchemaKey("crop_min_scale", .real(NumericBounds(lower: 0, lowerInclusive: false, upper: 1)), .value(.real(0.08))),
            ]),
            .section("val", [
                SchemaKey("batch_size", .integer(.atLeast(1)), .derived("dataset.common.batch_size")),
            ]),
        ]),
    ]

    /// The whole file.
    static let root: [SchemaKey] = [
        .section("general", [
            SchemaKey("backend", .text(.choice(["cpu", "mindspore", "pytorch"])), .value(.text("cpu"))),
            SchemaKey("parallel_fully_train", .boolean, .value(.boolean(true))),
            SchemaKey("seed", .integer(.atLeast(0)), .value(.integer(0))),
        ]),
        SchemaKey("pipeline", .textList(choices: pipelineSteps), .value(.list([.text("fully_train")]))),
        SchemaKey("fully_train", .section(step), .absent),
        SchemaKey("eval", .section(step), .absent),
        .section("runtime", [
            SchemaKey("checkpoint_dir", .text(.path), .value(.text("checkpoints"))),
            SchemaKey("keep_checkpoints", .integer(.atLeast(1)), .value(.integer(3))),
            SchemaKey("save_steps", .integer(.atLeast(0)), .value(.integer(0))),
            SchemaKey("log_dir", .text(.path), .value(.text("logs"))),
            SchemaKey("coordinator_url", .text(.httpURL), .absent),
            SchemaKey("job_name", .text(.plain), .value(.text("ghostnet-d"))),
            SchemaKey("report_interval", .integer(.atLeast(1)), .value(.integer(20))),
            SchemaKey("eval_interval", .integer(.atLeast(1)), .value(.integer(1))),
            SchemaKey("strict_data", .boolean, .value(.boolean(false))),
            SchemaKey("collective_timeout", .real(.greaterThan(0)), .value(.real(600))),
            SchemaKey("bucket_mib", .real(.greaterThan(0)), .value(.real(25))),
            SchemaKey("checksum_interval", .integer(.atLeast(0)), .value(.integer(100))),
            SchemaKey("threads", .integer(.atLeast(0)), .value(.integer(0))),
            SchemaKey("resume", .boolean, .value(.boolean(false))),
            SchemaKey("freeze_batch_norm", .boolean, .value(.boolean(false))),
        ]),
    ]

    /// Every full key path whose last component is `name`, for suggesting a misplaced key.
    static func paths(endingWith name: String) -> [String] {
        func walk(_ keys: [SchemaKey], _ prefix: String) -> [String] {
            keys.flatMap { key -> [String] in
                let path = prefix.isEmpty ? key.name : "\(prefix).\(key.name)"
                var found = key.name == name ? [path] : []
                if case .section(let children) = key.kind { found += walk(children, path) }
                return found
            }
        }
        return walk(root, "")
    }
}
