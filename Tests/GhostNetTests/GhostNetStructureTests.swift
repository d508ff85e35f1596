// The network as data: the reference's parameter and MAC counts, output shapes, PyTorch names and shapes,
// the ghost split of odd planes, `--blocks` parsing and the summary report.

import GhostNet
import Testing

@Suite struct GhostNetStructureTests {
    /// The reference's numbers: trainable parameters and multiply-accumulates at 224×224.
    @Test(arguments: [
        (GhostNetArchitecture.ghostnet101, 38_216_872, 4_538_613_760, "38216.872", "4.539"),
        (GhostNetArchitecture.ghostnet50, 28_999_336, 3_606_102_016, "28999.336", "3.606"),
    ])
    func parameterCountAndMultiplyAccumulatesMatchTheReference(
        architecture: GhostNetArchitecture, parameters: Int, macs: Int, thousands: String, billions: String
    ) throws {
        let structure = GhostNetStructure(configuration: try GhostNetConfiguration(architecture: architecture))
        #expect(structure.parameterCount == parameters)
        #expect(structure.multiplyAccumulates == macs)
        #expect(structure.parametersInThousands == thousands)
        #expect(structure.multiplyAccumulatesInBillions == billions)
        #expect(structure.summary.reduce(0) { $0 + $1.parameterCount } == parameters)
    }

    @Test func ghostnet101StageOutputShapesAt224() throws {
        let structure = GhostNetStructure(configuration: try GhostNetConfiguration())
        #expect(structure.summary.map(\.name) == ["stem", "layer1", "layer2", "layer3", "layer4", "fc"])
        #expect(
            structure.summary.map(\.outputShape) == [
                [64, 56, 56], [256, 56, 56], [512, 28, 28], [1024, 14, 14], [2048, 7, 7], [1000],
            ])
        #expect(structure.classifier.inputFeatures == 2048)
    }

    /// Stem 5 tensors; a GhostX stage with b > 2 has base 20 (with downsample) + layers.0 1 +
    /// 15 per ghost bottleneck + merge 5 + cheap 5 + end 15; fc 2. For 3, 4, 23, 3: 566.
    @Test func ghostnet101NamesAndShapesFollowThePyTorchModuleTree() throws {
        let structure = GhostNetStructure(configuration: try GhostNetConfiguration())
        let names = structure.tensors.map(\.name)
        #expect(names.count == 566)
        #expect(Set(names).count == names.count, "names are unique")
        #expect(names.first == "conv1.weight")
        #expect(names.suffix(2) == ["fc.weight", "fc.bias"])
        #expect(Array(names[1...4]) == ["bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"])

        let shapes = Dictionary(uniqueKeysWithValues: structure.tensors.map { ($0.name, $0.shape) })
        let expected: [String: [Int]] = [
            "conv1.weight": [64, 3, 7, 7],
            "bn1.running_var": [64],
            "layer1.base.conv1.weight": [64, 64, 1, 1],
            "layer1.base.downsample.0.weight": [256, 64, 1, 1],
            "layer1.base.downsample.1.running_var": [256],
            "layer2.base.conv2.weight": [128, 128, 3, 3],
            "layer2.layers.0.weight": [256, 512, 1, 1],
            "layer2.layers.2.conv3.weight": [256, 64, 1, 1],
            "layer3.layers.5.conv2.weight": [128, 128, 3, 3],
            "layer3.layers.21.bn3.bias": [512],
            "layer3.merge.1.weight": [512, 1024 + 21 * 512, 1, 1],
            "layer3.merge.2.bias": [512],
            "layer3.cheap.0.weight": [512, 1024, 1, 1],
            "layer3.cheap.1.running_mean": [512],
            "layer4.end.conv1.weight": [512, 2048, 1, 1],
            "layer4.end.bn3.weight": [2048],
            "fc.weight": [1000, 2048],
            "fc.bias": [1000],
        ]
        for (name, shape) in expected {
            #expect(shapes[name] == shape, "\(name)")
        }
        // The merge pool (merge.0), the end's and ghost blocks' shortcuts have no state.
        for absent in [
            "layer3.merge.0.weight", "layer3.layers.22.conv1.weight", "layer4.end.downsample.0.weight",
            "layer3.layers.1.downsample.0.weight", "layer2.layers.0.bias", "fc.num_batches_tracked",
        ] {
            #expect(shapes[absent] == nil, "\(absent)")
        }
        #expect(
            structure.tensors.filter { !$0.isTrainable }.allSatisfy {
                $0.name.hasSuffix(".running_mean") || $0.name.hasSuffix(".running_var")
            })
    }

    @Test func tinyVariantShapes() throws {
        let configuration = try GhostNetConfiguration(
            blocksPerStage: [3, 4, 3, 3], width: 8, classes: 10, imageSize: 32)
        let structure = GhostNetStructure(configuration: configuration)
        #expect(configuration.architectureName == "custom")
        #expect(
            structure.summary.map(\.outputShape) == [
                [8, 8, 8], [32, 8, 8], [64, 4, 4], [128, 2, 2], [256, 1, 1], [10],
            ])
        let stage2 = structure.stages[1]
        #expect(stage2.planes == 16 && stage2.stride == 2)
        let ghost = try #require(stage2.ghost)
        #expect(ghost.cheapPlanes == 8 && ghost.rawPlanes == 8)
        #expect(ghost.bottlenecks.map(\.name) == ["layer2.layers.1", "layer2.layers.2"])
        #expect(ghost.merge.convolution.weight.shape == [32, 64 + 2 * 32, 1, 1])
        #expect(structure.classifier.weight.shape == [10, 256])
        #expect(structure.parameterCount == structure.summary.reduce(0) { $0 + $1.parameterCount })
    }

    /// With an odd plane count the raw path gets the extra plane, and the end block still sees
    /// `4·raw + 4·cheap = 4p` channels.
    @Test func oddPlanesSplitWithTheRawPathRoundedUp() throws {
        let structure = GhostNetStructure(
            configuration: try GhostNetConfiguration(blocksPerStage: [3, 1, 1, 1], width: 5))
        let stage = structure.stages[0]
        let ghost = try #require(stage.ghost)
        #expect(ghost.cheapPlanes == 2 && ghost.rawPlanes == 3)
        #expect(ghost.projection.weight.shape == [12, 20, 1, 1])
        #expect(ghost.cheap.convolution.weight.shape == [8, 20, 1, 1])
        #expect(4 * ghost.rawPlanes + 4 * ghost.cheapPlanes == stage.end.inputChannels)
    }

    /// Stages with b ≤ 2 are `end(base(x))`: no layers, merge or cheap modules.
    @Test func shallowStagesHaveNoGhostPath() throws {
        let structure = GhostNetStructure(
            configuration: try GhostNetConfiguration(blocksPerStage: [1, 2, 3, 2], width: 4))
        #expect(structure.stages.map { $0.ghost == nil } == [true, true, false, true])
        let names = structure.tensors.map(\.name)
        #expect(
            !names.contains {
                $0.hasPrefix("layer1.layers") || $0.hasPrefix("layer2.merge") || $0.hasPrefix("layer4.cheap")
            })
        #expect(names.contains("layer3.layers.1.conv1.weight"))
        #expect(structure.stages[1].base.downsample != nil && structure.stages[1].end.downsample == nil)
    }

    @Test(arguments: [
        ([3, 4, 23], 64, 1000, 224, "blocks per stage"),
        ([3, 0, 23, 3], 64, 1000, 224, "blocks per stage"),
        ([3, 4, 23, 3], 1, 1000, 224, "width"),
        ([3, 4, 23, 3], 64, 0, 224, "classes"),
        ([3, 4, 23, 3], 64, 1000, 0, "image size"),
    ])
    func invalidConfigurationsAreRefusedWithTheReason(
        blocks: [Int], width: Int, classes: Int, imageSize: Int, reason: String
    ) {
        #expect {
            _ = try GhostNetConfiguration(blocksPerStage: blocks, width: width, classes: classes, imageSize: imageSize)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test func blocksParsing() {
        #expect(GhostNetConfiguration.blocksPerStage(parsing: "3,4,3,3") == [3, 4, 3, 3])
        #expect(GhostNetConfiguration.blocksPerStage(parsing: "3,,3") == nil)
        #expect(GhostNetConfiguration.blocksPerStage(parsing: "3,x") == nil)
    }

    @Test func reportListsEveryPartAndTheRecordFields() throws {
        let report = GhostNetStructure(configuration: try GhostNetConfiguration(architecture: .ghostnet50)).report
        #expect(report.contains("layer3  1024×14×14"))
        #expect(report.contains("28,999,336"))
        #expect(report.contains("3,606,102,016"))
        #expect(report.hasSuffix("params (K): 28999.336\nflops (G): 3.606"))
    }
}
