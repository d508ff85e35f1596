// The checks of what a configuration names on disk (data folders, model folders, checkpoint and log
// folders), kept apart from the file's own validity so `config check` can report both.

import Foundation

extension TrainingConfiguration {
    /// Checks what the configuration names on disk, separately from the file's own validity, so
    /// `config check` can report both and a dataset can be generated after the file is written.
    ///
    /// Checked: each step's `data_path` is a folder holding `val/` (and `train/` for `fully_train`);
    /// an eval step's `models_folder` is a folder; `checkpoint_dir` and `log_dir` are folders or do
    /// not exist yet (they are created on start).
    ///
    /// - Returns: The problems found, each of kind `.environment`; empty when all is well.
    package func environmentIssues(fileManager: FileManager = .default) -> [ConfigurationIssue] {
        var issues: [ConfigurationIssue] = []
        func isDirectory(_ path: String) -> Bool? {
            var directory: ObjCBool = false
            guard fileManager.fileExists(atPath: path, isDirectory: &directory) else { return nil }
            return directory.boolValue
        }
        func report(_ keyPath: String, _ message: String) {
            issues.append(ConfigurationIssue(kind: .environment, keyPath: keyPath, origin: file, message: message))
        }
        for name in pipeline {
            guard let step = name == .fullyTrain ? fullyTrain : eval else { continue }
            let dataKey = "\(name.rawValue).dataset.common.data_path"
            let dataPath = step.dataset.dataPath
            switch isDirectory(dataPath) {
            case nil:
                report(
                    dataKey,
                    "\(dataPath) does not exist; expected an ImageNet-layout folder with train/ and val/ (generate "
                        + "one with `ghostnet-d dataset synth --out \(dataPath)`)"
                )
            case false?:
                report(dataKey, "\(dataPath) is a file; expected an ImageNet-layout folder with train/ and val/")
            case true?:
                let splits = name == .fullyTrain ? ["train", "val"] : ["val"]
                for split in splits where isDirectory("\(dataPath)/\(split)") != true {
                    report(
                        dataKey,
                        "\(dataPath) has no \(split)/ folder; expected "
                            + "\(splits.map { $0 + "/" }.joined(separator: " and "))"
                    )
                }
            }
            if name == .eval, let folder = step.modelsFolder, isDirectory(folder) != true {
                report("eval.pipe_step.models_folder", "\(folder) is not a folder of checkpoints")
            }
        }
        for (key, path) in [
            ("runtime.checkpoint_dir", runtime.checkpointDirectory), ("runtime.log_dir", runtime.logDirectory),
        ]
        where isDirectory(path) == false {
            report(key, "\(path) is a file; expected a folder (or nothing, to have it created)")
        }
        return issues
    }

    /// Throws the ``environmentIssues(fileManager:)``, if any.
    ///
    /// - Throws: ``ConfigurationError`` naming the file and each key whose path is unusable.
    package func validateEnvironment(fileManager: FileManager = .default) throws(ConfigurationError) {
        let issues = environmentIssues(fileManager: fileManager)
        if !issues.isEmpty { throw ConfigurationError(file: file, issues: issues) }
    }
}
