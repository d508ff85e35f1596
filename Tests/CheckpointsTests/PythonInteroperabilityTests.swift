// Interoperability with Python's `safetensors` package: checkpoints written here open there, and
// files written there open here.

import Checkpoints
import Foundation
import GhostNet
import TensorEngine
import Testing
import _TestSupport

@Suite(.enabled(if: Python.isAvailable, "needs python3 with the safetensors and numpy packages"))
struct PythonInteroperabilityTests {
    @Test func pythonReadsACheckpointWrittenHere() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("tiny.safetensors").path
        let parameters = ModelParameters.initialized(for: try tinyStructure(), seed: 21)
        try Checkpoint(parameters: parameters, seed: 21, epoch: 2, step: 77).write(to: path)

        let fcBias = parameters["fc.bias"].scalars
        let conv1 = parameters["conv1.weight"].scalars
        let script = """
            import sys, json
            from safetensors import safe_open
            with safe_open(sys.argv[1], framework="np") as f:
                meta = f.metadata()
                names = list(f.keys())
                out = {"names": sorted(names), "meta": meta,
                       "conv1_shape": list(f.get_tensor("conv1.weight").shape),
                       "conv1_dtype": str(f.get_tensor("conv1.weight").dtype),
                       "conv1_first": [float(v) for v in f.get_tensor("conv1.weight").reshape(-1)[:5]],
                       "fc_bias": [float(v) for v in f.get_tensor("fc.bias")]}
            print(json.dumps(out))
            """
        let result = try Python.run(script, [path])
        #expect(result.status == 0, "\(result.combined)")
        let output = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
        let names = output?["names"] as? [String]
        #expect(names == parameters.structure.tensors.map(\.name).sorted())
        let meta = output?["meta"] as? [String: String]
        #expect(meta?["step"] == "77" && meta?["arch"] == "custom" && meta?["seed"] == "21")
        #expect(output?["conv1_shape"] as? [Int] == [8, 3, 7, 7])
        #expect(output?["conv1_dtype"] as? String == "float32")
        expectClose(
            (output?["conv1_first"] as? [Double] ?? []).map(Float.init), Array(conv1.prefix(5)), relative: 0,
            absolute: 0)
        expectClose((output?["fc_bias"] as? [Double] ?? []).map(Float.init), fcBias, relative: 0, absolute: 0)
    }

    @Test func aLabelFileWrittenByPythonReadsHere() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("labels.safetensors").path
        let script = """
            import sys, numpy as np
            from safetensors.numpy import save_file
            save_file({"labels": np.array([3, 0, 9, -1], dtype=np.int64),
                       "labels32": np.array([[1], [2]], dtype=np.int32),
                       "input": np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4) / 8},
                      sys.argv[1], metadata={"source": "numpy"})
            """
        let result = try Python.run(script, [path])
        #expect(result.status == 0, "\(result.combined)")
        let file = try SafeTensorsFile(contentsOf: path)
        #expect(file.metadata == ["source": "numpy"])
        #expect(try file.integers(named: "labels") == [3, 0, 9, -1])
        #expect(try file.integers(named: "labels32") == [1, 2])
        let input = try file.tensor(named: "input")
        #expect(input.shape == [1, 2, 3, 4])
        expectClose(input.scalars, (0..<24).map { Float($0) / 8 }, relative: 0, absolute: 0)
    }
}
