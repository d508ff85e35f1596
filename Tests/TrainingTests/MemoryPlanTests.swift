// The memory budget: `runtime.memory_limit` spellings, the memory model's structure-derived sizes,
// and the planner's pick and refusals for given limits.

import Foundation
import GhostNet
import Testing
import Training

@Suite struct MemoryLimitTests {
    @Test func decimalAndBinaryUnitsParse() {
        #expect(MemoryLimit("6GB") == .bytes(6_000_000_000))
        #expect(MemoryLimit("6 GB") == .bytes(6_000_000_000))
        #expect(MemoryLimit("6000MB") == .bytes(6_000_000_000))
        #expect(MemoryLimit("6GiB") == .bytes(6 * 1_073_741_824))
        #expect(MemoryLimit("512 MiB") == .bytes(512 * 1_048_576))
        #expect(MemoryLimit("2.5GB") == .bytes(2_500_000_000))
        #expect(MemoryLimit("auto") == .automatic)
    }

    @Test(arguments: ["six", "6", "", "GB", "6 parsecs", "-1GB", "0.5MB", "2PB"])
    func nonsenseIsRefused(_ text: String) {
        #expect(MemoryLimit(text) == nil)
    }

    @Test func autoDividesTheServersShareAmongItsRanks() {
        let server = MemoryLimit.serverMemory()
        #expect(server > 0)
        let one = MemoryLimit.automatic.bytes(ranksOnServer: 1)
        #expect(one == Int(Double(server) * MemoryLimit.automaticShare))
        #expect(MemoryLimit.automatic.bytes(ranksOnServer: 4) == one / 4)
    }

    @Test func theConfigurationKeyRefusesSixNamingTheKey() {
        let yaml = minimalTraining + "\nruntime:\n    memory_limit: six\n"
        #expect {
            _ = try TrainingConfiguration.parse(yaml: yaml, file: "bad.yml")
        } throws: { error in
            let error = error as! ConfigurationError
            return error.issues.first?.keyPath == "runtime.memory_limit" && error.description.contains("6GiB")
        }
    }

    @Test func theConfigurationKeyDefaultsToAutoAndReadsSizes() throws {
        let automatic = try TrainingConfiguration.parse(yaml: minimalTraining, file: "ok.yml")
        #expect(automatic.runtime.memoryLimit == .automatic)
        let fixed = try TrainingConfiguration.parse(
            yaml: minimalTraining + "\nruntime:\n    memory_limit: 6 GB\n", file: "ok.yml")
        #expect(fixed.runtime.memoryLimit == .bytes(6_000_000_000))
    }
}

@Suite struct MemoryPlanTests {
    /// 1 GB fixed, 100 MB per image: round figures whose picks can be worked out by hand.
    private let model = MemoryModel(fixedBytes: 1_000_000_000, bytesPerImage: 100_000_000)

    private func plan(limit: Int, batch: Int = 128, imageSize: Int = 224, requested: Int? = nil) throws -> MemoryPlan {
        try MemoryPlan.plan(
            model: model, imageSize: imageSize, batchSize: batch, requested: requested, minimumSize: 2,
            limitBytes: limit)
    }

    @Test func aRoomyLimitGetsTheFastestMicroBatch() throws {
        let chosen = try plan(limit: 19_200_000_000)
        #expect(chosen.microBatchSize == 16)
        #expect(chosen.passes == 8)
        #expect(chosen.predictedPeakBytes == 2_600_000_000)
    }

    @Test func aTightLimitGetsTheLargestMicroBatchThatFits() throws {
        // (2.5 GB − 1 GB) / 100 MB = 15 images; 128 = 2 × 15 + 7 × 14 in 9 passes.
        let chosen = try plan(limit: 2_500_000_000)
        #expect(chosen.microBatchSize == 15)
        #expect(chosen.passes == 9)
        #expect(chosen.predictedPeakBytes <= 2_500_000_000)
    }

    @Test func smallerImagesGetMoreImagesPerPassUpToTheBatch() throws {
        #expect(MemoryPlan.fastestMicroBatch(imageSize: 112) == 64)
        let chosen = try plan(limit: 19_200_000_000, batch: 32, imageSize: 112)
        #expect(chosen.microBatchSize == 32)
        #expect(chosen.passes == 1)
    }

    @Test func aRequestedMicroBatchIsKeptWhenItFits() throws {
        let chosen = try plan(limit: 19_200_000_000, requested: 8)
        #expect(chosen.microBatchSize == 8)
        #expect(chosen.passes == 16)
    }

    @Test func aLimitTooSmallForOnePassNamesTheLimitAndTheMinimum() {
        #expect {
            _ = try plan(limit: 1_100_000_000)
        } throws: { error in
            let error = error as! MemoryPlanError
            return error.code == .noImageFits && error.description.contains("runtime.memory_limit")
                && error.description.contains("1.10 GB") && error.description.contains("minimum needed is 1.20 GB")
        }
    }

    @Test func aLimitBelowTheFixedPartIsRefused() {
        #expect {
            _ = try plan(limit: 900_000_000)
        } throws: { error in
            let error = error as! MemoryPlanError
            return error.code == .belowFixedPart && error.description.contains("900 MB")
                && error.description.contains("fixed part") && error.description.contains("1.00 GB")
        }
    }

    @Test func aRequestedMicroBatchThatDoesNotFitIsRefused() {
        #expect {
            _ = try plan(limit: 2_500_000_000, requested: 64)
        } throws: { error in
            let error = error as! MemoryPlanError
            return error.code == .requestedTooLarge && error.description.contains("runtime.micro_batch_size 64")
        }
    }

    /// Two lanes run passes of the fastest size side by side when both fit, else one lane of the largest
    /// that fits. With 50 MB per extra lane: 1 GB + 2 × 16 × 100 MB + 50 MB.
    @Test func twoLanesRunTheFastestMicroBatchSideBySideWhenBothFit() throws {
        let model = MemoryModel(fixedBytes: 1_000_000_000, bytesPerImage: 100_000_000, laneBytes: 50_000_000)
        func plan(limit: Int, batch: Int = 128, requested: Int? = nil) throws -> MemoryPlan {
            try MemoryPlan.plan(
                model: model, imageSize: 224, batchSize: batch, requested: requested, minimumSize: 2,
                limitBytes: limit, lanes: 2)
        }
        let roomy = try plan(limit: 19_200_000_000)
        #expect((roomy.microBatchSize, roomy.passes, roomy.lanes) == (16, 8, 2))
        #expect(roomy.predictedPeakBytes == 4_250_000_000)
        #expect(
            roomy.description.contains("micro-batch 16 × 8 pass(es) per step, 2 at a time, predicted peak 4.25 GB"),
            "\(roomy.description)")
        // Two lanes of 16 need 4.25 GB; one lane of 16 fits 4 GB.
        let tight = try plan(limit: 4_000_000_000)
        #expect((tight.microBatchSize, tight.lanes, tight.predictedPeakBytes) == (16, 1, 2_600_000_000))
        #expect(!tight.description.contains("at a time"))
        // Below that, one lane of the largest that fits, as without lanes.
        #expect(try plan(limit: 2_500_000_000).microBatchSize == 15)
        // A batch of one pass runs in one lane.
        #expect(try plan(limit: 19_200_000_000, batch: 16).lanes == 1)
        // A requested micro-batch runs in the most lanes that fit: 2 × 8 need 2.65 GB.
        #expect(try plan(limit: 2_650_000_000, requested: 8).lanes == 2)
        #expect(try plan(limit: 2_600_000_000, requested: 8).lanes == 1)
    }

    @Test func theModelFollowsTheNetworksShapes() throws {
        func model(_ architecture: GhostNetArchitecture, _ size: Int) throws -> MemoryModel {
            let network = try GhostNetConfiguration(architecture: architecture, imageSize: size)
            return MemoryModel(structure: GhostNetStructure(configuration: network), imageSize: size, pipelineImages: 0)
        }
        let deep = try model(.ghostnet101, 224)
        let shallow = try model(.ghostnet50, 224)
        #expect(deep.bytesPerImage > shallow.bytesPerImage)
        #expect(deep.fixedBytes > shallow.fixedBytes)
        // Feature maps scale with the pixels; 112 is not a multiple of 32, so the last stage's
        // 4×4 maps (not 3.5×3.5) make the ratio a little less than 4.
        let ratio = Double(deep.bytesPerImage) / Double(try model(.ghostnet101, 112).bytesPerImage)
        #expect(ratio > 3.8 && ratio < 4.0)
    }

    @Test func theShippedSetupPlansUnderFourGigabytes() throws {
        let network = try GhostNetConfiguration(architecture: .ghostnet101, imageSize: 224)
        let memory = MemoryModel(
            structure: GhostNetStructure(configuration: network), imageSize: 224,
            pipelineImages: MemoryModel.batchesInFlight * 128)
        let roomy = try MemoryPlan.plan(
            model: memory, imageSize: 224, batchSize: 128, requested: nil, minimumSize: 2, limitBytes: 19_200_000_000)
        #expect(roomy.microBatchSize == 16)
        #expect(roomy.predictedPeakBytes < 4_000_000_000)
        let tight = try MemoryPlan.plan(
            model: memory, imageSize: 224, batchSize: 128, requested: nil, minimumSize: 2, limitBytes: 2_500_000_000)
        #expect(tight.microBatchSize < 16 && tight.predictedPeakBytes <= 2_500_000_000)
    }
}
