// The repeatable `--set key.path=value` option of every command that reads a configuration file.

import ArgumentParser
import Training

/// Values that replace the configuration file's, typed by their key when the file is loaded.
struct ConfigurationSetOptions: ParsableArguments {
    @Option(
        name: .customLong("set"),
        help: ArgumentHelp(
            "Override a value, e.g. fully_train.trainer.epochs=3 (repeatable; typed by the key).",
            valueName: "key.path=value"))
    var values: [String] = []

    /// The overrides, in the order given; `file` names the configuration in messages.
    func overrides(of file: String) throws -> [ConfigurationOverride] {
        try ConfigurationOverride.parsing(values, file: file)
    }
}
