// Small synthetic JPEG datasets in ImageNet layout for the training and CLI tests.

import Foundation
import ImageData

/// Small synthetic JPEG datasets for training tests, written once per test process.
package enum TinyDatasets {
    /// Writes 4 classes × `trainPerClass` small training JPEGs (24–40 px, 2 val each) into a fresh
    /// temporary folder and returns its path.
    package static func make(trainPerClass: Int, prefix: String) -> String {
        let folder = try! TemporaryDirectory.make(prefix: prefix)
        _ = try! SyntheticDataset.write(
            to: folder.path,
            configuration: SyntheticDataset.Configuration(
                classes: 4, trainPerClass: trainPerClass, validationPerClass: 2, seed: 5, sideRange: 24...40))
        return folder.path
    }
}
