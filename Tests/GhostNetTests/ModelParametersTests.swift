// A fresh model's parameters: the stated initial distributions, and reproducibility keyed by seed and
// tensor name.

import Foundation
import GhostNet
import TensorEngine
import Testing
import _TestSupport

@Suite struct ModelParametersTests {
    @Test func initialisationFollowsTheStatedDistributions() throws {
        let structure = try tinyStructure()
        let parameters = ModelParameters.initialized(for: structure, seed: 11)
        #expect(parameters.tensors.map(\.shape) == structure.tensors.map(\.shape))

        // layer3.merge.1: 128 + 1·64 → 64 channels; fan-out 64, σ = √(2/64).
        let merge = parameters["layer3.merge.1.weight"].scalars.map(Double.init)
        let mean = merge.reduce(0, +) / Double(merge.count)
        let deviation = (merge.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(merge.count)).squareRoot()
        expectClose(
            deviation, (2.0 / 64).squareRoot(), relative: 0.03, absolute: 0,
            "Kaiming fan-out σ over \(merge.count) samples")
        expectClose(mean, 0, relative: 0, absolute: 0.01)

        let bound = 1 / Double(256).squareRoot()
        for name in ["fc.weight", "fc.bias"] {
            let values = parameters[name].scalars
            #expect(values.allSatisfy { abs(Double($0)) <= bound }, "\(name) within ±1/√fan_in")
            #expect(
                values.contains { Double($0) > bound / 2 } && values.contains { Double($0) < -bound / 2 },
                "\(name) spreads over the range")
        }
        #expect(parameters["layer2.cheap.1.weight"].scalars.allSatisfy { $0 == 1 })
        #expect(parameters["layer2.cheap.1.bias"].scalars.allSatisfy { $0 == 0 })
        #expect(parameters["layer2.cheap.1.running_mean"].scalars.allSatisfy { $0 == 0 })
        #expect(parameters["layer2.cheap.1.running_var"].scalars.allSatisfy { $0 == 1 })
    }

    /// Each tensor's generator is keyed by the seed and its own name, so the same seed reproduces
    /// the model and a tensor does not change when other parts of the network do.
    @Test func initialisationIsReproducibleAndKeyedPerTensor() throws {
        let structure = try tinyStructure()
        let first = ModelParameters.initialized(for: structure, seed: 5)
        let again = ModelParameters.initialized(for: structure, seed: 5)
        let other = ModelParameters.initialized(for: structure, seed: 6)
        let moreClasses = ModelParameters.initialized(for: try tinyStructure(classes: 20), seed: 5)
        let bits = { (tensor: Tensor) in tensor.scalars.map(\.bitPattern) }
        #expect(zip(first.tensors, again.tensors).allSatisfy { bits($0) == bits($1) })
        #expect(bits(first["conv1.weight"]) != bits(other["conv1.weight"]))
        #expect(bits(first["layer1.base.conv2.weight"]) != bits(first["layer1.end.conv2.weight"]))
        #expect(bits(first["layer4.end.conv3.weight"]) == bits(moreClasses["layer4.end.conv3.weight"]))
    }
}
