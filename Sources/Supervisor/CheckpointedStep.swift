// The step a restart resumes from, as the supervisor sees it before relaunching: the newest
// checkpoint of the run's folder whose two files read and verify (CRC-32C) and whose training
// state checks out, the same choice `train --resume` makes on rank 0.

import Checkpoints
import Foundation

/// Where a resumed start continues: a checkpoint and the training state it holds.
package struct CheckpointedStep: Sendable, Equatable, CustomStringConvertible {
    /// The model file's name, e.g. `ckpt-e0001-s000024.safetensors`.
    package var name: String
    package var state: TrainingState

    package init(name: String, state: TrainingState) {
        self.name = name
        self.state = state
    }

    /// `global step 24 (epoch 2, step 1 of it) in ckpt-e0001-s000024.safetensors`.
    package var description: String {
        "global step \(state.globalStep) (epoch \(state.epoch + 1), step \(state.stepInEpoch + 1) of it) in \(name)"
    }

    /// The newest valid checkpoint in `folder`, or nil when there is none; `warn` receives one
    /// line per checkpoint skipped as incomplete or corrupt.
    ///
    /// The network's shapes are not checked here (the supervisor does not build the model); the
    /// trainer refuses a checkpoint of another network with its own message.
    package static func newest(in folder: String, warn: (String) -> Void) throws -> CheckpointedStep? {
        let directory = CheckpointDirectory(url: URL(fileURLWithPath: folder), keep: 1)
        var state: TrainingState?
        let entry = try directory.newestValid(
            validate: { entry in
                let model = try SafeTensorsFile(contentsOf: entry.modelURL.path) { header in
                    _ = try TrainingState(metadata: header.metadata)
                }
                _ = try SafeTensorsFile(contentsOf: entry.optimizerURL.path)
                state = try TrainingState(metadata: model.metadata)
            }, warn: warn)
        guard let entry, let state else { return nil }
        return CheckpointedStep(name: entry.name, state: state)
    }
}
