// `model forward` / `model grad` on files Python's `safetensors` writes, checked against an
// independent NumPy implementation of the network.

import Checkpoints
import Foundation
import GhostNet
import Layers
import TensorEngine
import Testing
import _TestSupport

/// `model forward` / `model grad` on files the Python `safetensors` package writes and reads, as a
/// PyTorch user would produce them: NCHW images, I64 labels, a `state_dict` export with
/// `num_batches_tracked` counters and no ghostnet-d metadata.
@Suite(.enabled(if: Python.isAvailable, "needs python3 with the safetensors and numpy packages"))
struct ModelInteroperabilityTests {
    @Test func pythonFilesRunForwardAndGrad() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        let structure = try tinyStructure()
        try Checkpoint(parameters: .initialized(for: structure, seed: 31), seed: 31).write(to: path("w.safetensors"))

        let prepare = """
            import sys, numpy as np
            from safetensors.numpy import save_file
            from safetensors import safe_open
            directory = sys.argv[1]
            with safe_open(directory + "/w.safetensors", framework="np") as f:
                state = {name: f.get_tensor(name) for name in f.keys()}
            for name in [n for n in state if n.endswith(".running_mean")]:
                state[name[:-len("running_mean")] + "num_batches_tracked"] = np.array(0, dtype=np.int64)
            save_file(state, directory + "/export.safetensors")
            rng = np.random.default_rng(5)
            images = rng.standard_normal((3, 3, 32, 32)).astype(np.float32)
            images += rng.standard_normal((3, 3, 1, 1)).astype(np.float32)
            save_file({"input": images}, directory + "/x.safetensors")
            save_file({"labels": np.array([2, 9, 4], dtype=np.int64)}, directory + "/l.safetensors")
            """
        let prepared = try Python.run(prepare, [directory.path])
        #expect(prepared.status == 0, "\(prepared.combined)")

        let configuration = structure.configuration
        let loss = try ModelInteroperability.gradient(
            checkpoint: path("export.safetensors"), input: path("x.safetensors"), labels: path("l.safetensors"),
            output: path("g.safetensors"), untaggedConfiguration: configuration)
        try ModelInteroperability.forward(
            checkpoint: path("w.safetensors"), input: path("x.safetensors"), output: path("y.safetensors"),
            trainingMode: false, untaggedConfiguration: configuration)

        let inspect = """
            import sys, json
            from safetensors import safe_open
            directory = sys.argv[1]
            with safe_open(directory + "/g.safetensors", framework="np") as g, \
            safe_open(directory + "/y.safetensors", framework="np") as y:
                print(json.dumps({
                    "loss_shape": list(g.get_tensor("loss").shape), "loss": float(g.get_tensor("loss")),
                    "conv_shape": list(g.get_tensor("layer2.base.conv2.weight").shape),
                    "conv_sum": float(g.get_tensor("layer2.base.conv2.weight").astype("float64").sum()),
                    "count": len(g.keys()), "logits_shape": list(y.get_tensor("logits").shape)}))
            """
        let inspected = try Python.run(inspect, [directory.path])
        #expect(inspected.status == 0, "\(inspected.combined)")
        let output = try #require(
            try JSONSerialization.jsonObject(with: Data(inspected.standardOutput.utf8)) as? [String: Any])
        #expect(output["loss_shape"] as? [Int] == [])
        expectClose(output["loss"] as? Double ?? .nan, loss, relative: 1e-6, absolute: 0)
        #expect(output["conv_shape"] as? [Int] == [16, 16, 3, 3])
        #expect(output["count"] as? Int == structure.trainableTensors.count + 1)
        #expect(output["logits_shape"] as? [Int] == [3, 10])

        let gradients = try SafeTensorsFile(contentsOf: path("g.safetensors"))
        let conv = try gradients.tensor(named: "layer2.base.conv2.weight").scalars
        expectClose(
            output["conv_sum"] as? Double ?? .nan, conv.reduce(0.0) { $0 + Double($1) }, relative: 1e-6, absolute: 1e-9)
        #expect(conv.contains { $0 != 0 })
    }

    /// An independent NumPy implementation of the architecture (float64, NCHW, written from
    /// the PyTorch names alone) gives the same logits as the model, with batch and with running
    /// statistics.
    @Test func logitsMatchAnIndependentNumPyImplementation() throws {
        let directory = try TemporaryDirectory.make()
        defer { try? FileManager.default.removeItem(at: directory) }
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        let structure = try tinyStructure()
        var model = GhostNetModel(.initialized(for: structure, seed: 17))
        // Images whose statistics differ (see tinyImages): with identical noise statistics the
        // training-mode merge batch norm divides by a near-zero spread over the batch and turns
        // float32 rounding differences (e.g. of OpenBLAS's thread count) into 1e-3 logit errors.
        let images = tinyImages(batch: 4, seed: 8)
        let imagesNCHW = images.permuted([0, 3, 1, 2])
        // One training pass moves the running statistics away from 0 and 1.
        let trainingLogits = try model.forward(images, mode: .training)
        try Checkpoint(parameters: model.exportedParameters, seed: 17).write(to: path("w.safetensors"))
        var inputFile = SafeTensorsFile()
        inputFile.append(imagesNCHW, named: "input")
        try inputFile.write(to: path("x.safetensors"))

        let reference = """
            import sys, json, numpy as np
            from safetensors.numpy import load_file
            W = {k: v.astype(np.float64) for k, v in load_file(sys.argv[1] + "/w.safetensors").items()}
            images = load_file(sys.argv[1] + "/x.safetensors")["input"].astype(np.float64)
            def conv(x, w, stride, pad):
                n, c, h, wd = x.shape; k = w.shape[2]
                xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
                oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
                out = np.zeros((n, w.shape[0], oh, ow))
                for i in range(k):
                    for j in range(k):
                        out += np.einsum(
                            "nchw,oc->nohw", xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride],
                            w[:, :, i, j])
                return out
            def bn(x, p, train):
                m, v = (
                    (x.mean((0, 2, 3)), x.var((0, 2, 3))) if train else (W[p + ".running_mean"], W[p + ".running_var"]))
                e = lambda t: t[None, :, None, None]
                return (x - e(m)) / np.sqrt(e(v) + 1e-5) * e(W[p + ".weight"]) + e(W[p + ".bias"])
            relu = lambda x: np.maximum(x, 0)
            def bottleneck(x, p, stride, train):
                o = relu(bn(conv(x, W[p + ".conv1.weight"], 1, 0), p + ".bn1", train))
                o = relu(bn(conv(o, W[p + ".conv2.weight"], stride, 1), p + ".bn2", train))
                o = bn(conv(o, W[p + ".conv3.weight"], 1, 0), p + ".bn3", train)
                if p + ".downsample.0.weight" in W:
                    x = bn(conv(x, W[p + ".downsample.0.weight"], stride, 0), p + ".downsample.1", train)
                return relu(o + x)
            def stage(x, name, stride, blocks, train):
                x0 = bottleneck(x, name + ".base", stride, train)
                if blocks > 2:
                    x = conv(x0, W[name + ".layers.0.weight"], 1, 0)
                    collected = [x0]
                    for i in range(1, blocks - 1):
                        x = bottleneck(x, f"{name}.layers.{i}", 1, train)
                        collected.append(x)
                    pooled = np.concatenate(collected, 1).mean((2, 3), keepdims=True)
                    m = bn(conv(pooled, W[name + ".merge.1.weight"], 1, 0), name + ".merge.2", train)
                    c = relu(bn(conv(x0, W[name + ".cheap.0.weight"], 1, 0), name + ".cheap.1", train) + m)
                    x0 = np.concatenate([x, c], 1)
                return bottleneck(x0, name + ".end", 1, train)
            def network(x, train):
                x = relu(bn(conv(x, W["conv1.weight"], 2, 3), "bn1", train))
                n, c, h, w = x.shape
                xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
                oh, ow = (h - 1) // 2 + 1, (w - 1) // 2 + 1
                x = np.max([xp[:, :, i:i + 2 * oh:2, j:j + 2 * ow:2] for i in range(3) for j in range(3)], axis=0)
                for index, blocks in enumerate([3, 4, 3, 3]):
                    x = stage(x, f"layer{index + 1}", 1 if index == 0 else 2, blocks, train)
                return x.mean((2, 3)) @ W["fc.weight"].T + W["fc.bias"]
            print(json.dumps({
                "training": network(images, True).ravel().tolist(),
                "inference": network(images, False).ravel().tolist()}))
            """
        let result = try Python.run(reference, [directory.path])
        #expect(result.status == 0, "\(result.combined)")
        let output = try #require(
            try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: [Double]])
        let inferenceLogits = try model.evaluate(images: images)
        // Training mode's batch statistics over 4 small images amplify float32 rounding: the largest
        // logit error measured 2.7e-4 with im2col 3×3 convolutions and 2.4e-4 with Winograd's, on
        // logits up to 2. So the absolute tolerance scales with the largest logit.
        let trainingReference = (output["training"] ?? []).map(Float.init)
        let logitScale = Double(trainingReference.map(abs).max() ?? 0)
        expectClose(
            trainingLogits.scalars, trainingReference, relative: 1e-3, absolute: 2.5e-4 * logitScale, "training mode")
        expectClose(
            inferenceLogits.scalars, (output["inference"] ?? []).map(Float.init), relative: 1e-3, absolute: 1e-4,
            "inference mode")
    }
}
