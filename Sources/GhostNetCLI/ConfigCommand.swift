//===----------------------------------------------------------------------===//
// ghostnet-d — command-line interface
//===----------------------------------------------------------------------===//

import ArgumentParser
import Training

/// `ghostnet-d config`: configuration files.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with training and evaluation configuration files.",
        subcommands: [Check.self])
}

extension ConfigCommand {
    /// `ghostnet-d config check FILE [--set key=value ...]`
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file and print it resolved, with every default filled in.",
            discussion: """
                Unknown keys, wrong types and out-of-range values are reported with their key path and \
                a suggestion for misspellings. Unless --skip-environment is given, the paths the file \
                names (data_path, models_folder, checkpoint and log folders) are checked too. Relative \
                paths resolve against the current directory. Exits non-zero on any problem.
                """)

        @Argument(help: "The YAML configuration file.")
        var file: String

        @Option(name: .customLong("set"), help: ArgumentHelp(
            "Override a value, e.g. fully_train.trainer.epochs=3 (repeatable; typed by the key).",
            valueName: "key.path=value"))
        var overrides: [String] = []

        @Flag(help: "Check only the file, not the paths it names.")
        var skipEnvironment = false

        func run() throws {
            let parsedOverrides = try ConfigurationOverride.parsing(overrides, file: file)
            let configuration = try TrainingConfiguration.load(contentsOf: file, overrides: parsedOverrides)
            print("# \(file): resolved configuration")
            print(configuration.resolvedYAML, terminator: "")
            if !skipEnvironment {
                try configuration.validateEnvironment()
            }
            print("# configuration OK")
        }
    }
}
