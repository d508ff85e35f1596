// The training loss: softmax cross-entropy over a batch's logits, against integer labels or soft targets
// (mixup), returning the mean loss and its gradient in one pass.

import RealModule

/// A loss value and its gradient with respect to the logits.
package struct LossAndGradient: Sendable {
    /// The mean loss over the batch.
    package var loss: Double
    /// `∂loss/∂logits`, `[N, classes]`.
    package var gradLogits: Tensor
}

/// Softmax cross-entropy with integer class labels, averaged over the batch.
///
/// `loss = mean_n(logsumexp(z_n) − z_n[label_n])`; gradient `(softmax(z_n) − onehot(label_n)) / N`.
/// Computed with the row maximum subtracted, so large logits do not overflow.
///
/// - Parameters:
///   - logits: `[N, classes]`.
///   - labels: `N` class indices in `0..<classes`.
package func softmaxCrossEntropy(logits: Tensor, labels: [Int]) -> LossAndGradient {
    ensure(
        logits.shape.count == 2 && logits.shape[0] == labels.count,
        "softmaxCrossEntropy: logits \(logits.shape) must be [N, classes] with N = \(labels.count) labels")
    let classes = logits.shape[1]
    for (row, label) in labels.enumerated() {
        ensure(
            (0..<classes).contains(label),
            "softmaxCrossEntropy: label \(label) of row \(row) is outside 0..<\(classes) for logits \(logits.shape)")
    }
    return crossEntropy(logits: logits) { row in
        (target: { $0 == labels[row] ? 1 : 0 }, targetSum: 1)
    }
}

/// Softmax cross-entropy against soft target distributions (mixup, label smoothing), averaged
/// over the batch.
///
/// `loss = mean_n(−Σ_k t_nk · log softmax(z_n)_k)`; gradient `(softmax(z_n)·Σ_k t_nk − t_n) / N`,
/// which is `(softmax − t) / N` for rows summing to 1.
///
/// - Parameters:
///   - logits: `[N, classes]`.
///   - targets: `[N, classes]`, non-negative rows that normally sum to 1.
package func softmaxCrossEntropy(logits: Tensor, targets: Tensor) -> LossAndGradient {
    ensure(
        logits.shape.count == 2 && targets.shape == logits.shape,
        "softmaxCrossEntropy: targets \(targets.shape) must match logits \(logits.shape) ([N, classes])")
    let classes = logits.shape[1]
    return targets.withUnsafeBufferPointer { targets in
        crossEntropy(logits: logits) { row in
            let rowTargets = targets.baseAddress! + row * classes
            var sum = 0.0
            for k in 0..<classes { sum += Double(rowTargets[k]) }
            return (target: { Double(rowTargets[$0]) }, targetSum: sum)
        }
    }
}

/// The shared log-sum-exp kernel: `targetsOfRow(row)` returns the row's target lookup (by class)
/// and the row's target sum.
private func crossEntropy(
    logits: Tensor,
    targetsOfRow: (Int) -> (target: (Int) -> Double, targetSum: Double)
) -> LossAndGradient {
    KernelProfiler.measure(.loss) { crossEntropyKernel(logits: logits, targetsOfRow: targetsOfRow) }
}

private func crossEntropyKernel(
    logits: Tensor,
    targetsOfRow: (Int) -> (target: (Int) -> Double, targetSum: Double)
) -> LossAndGradient {
    let (batch, classes) = (logits.shape[0], logits.shape[1])
    ensure(batch > 0 && classes > 0, "softmaxCrossEntropy: logits \(logits.shape) are empty")
    var total = 0.0
    let gradient = Tensor(shape: logits.shape) { gradient in
        logits.withUnsafeBufferPointer { logits in
            for row in 0..<batch {
                let z = logits.baseAddress! + row * classes
                let g = gradient.baseAddress! + row * classes
                var maximum = z[0]
                for k in 1..<classes { maximum = max(maximum, z[k]) }
                var sumExp = 0.0
                for k in 0..<classes {
                    let e = Double.exp(Double(z[k] - maximum))
                    g[k] = Float(e)
                    sumExp += e
                }
                let logSumExp = Double(maximum) + Double.log(sumExp)
                let (target, targetSum) = targetsOfRow(row)
                for k in 0..<classes {
                    let t = target(k)
                    total += t * (logSumExp - Double(z[k]))
                    g[k] = Float((Double(g[k]) / sumExp * targetSum - t) / Double(batch))
                }
            }
        }
    }
    return LossAndGradient(loss: total / Double(batch), gradLogits: gradient)
}
