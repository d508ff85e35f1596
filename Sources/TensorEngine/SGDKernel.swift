// The SGD-with-momentum update on flat buffers, the one optimizer kernel (PyTorch semantics).

/// One step of stochastic gradient descent with momentum and L2 weight decay on flat buffers, in
/// PyTorch's `torch.optim.SGD` semantics (dampening 0, no Nesterov):
///
///     d = g + weightDecay·w
///     v = momentum·v + d      (v = d when `initializeVelocity`, as PyTorch starts its buffer)
///     w = w − learningRate·v
///
/// - Parameters:
///   - weights: The parameter's elements, any layout; updated in place.
///   - gradients: `∂loss/∂weights`, same layout and count.
///   - velocity: The momentum buffer, same count; written on every call.
///   - initializeVelocity: True on a tensor's first update (the old `velocity` is ignored).
/// - Precondition: the three buffers have the same count.
package func sgdMomentumUpdate(
    weights: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>,
    velocity: UnsafeMutableBufferPointer<Float>,
    learningRate: Float, momentum: Float, weightDecay: Float, initializeVelocity: Bool
) {
    ensure(
        weights.count == gradients.count && weights.count == velocity.count,
        "SGD: weights \(weights.count), gradients \(gradients.count), velocity \(velocity.count) differ")
    KernelProfiler.measure(.optimizer) {
        guard let w = weights.baseAddress, let g = gradients.baseAddress, let v = velocity.baseAddress else { return }
        // The first update must not read the buffer: it may hold anything, even NaN.
        let mu: Float = initializeVelocity ? 0 : momentum
        if initializeVelocity { v.update(repeating: 0, count: weights.count) }
        for index in 0..<weights.count {
            let next = mu * v[index] + (g[index] + weightDecay * w[index])
            v[index] = next
            w[index] -= learningRate * next
        }
    }
}
