// `ensure`, the engine's shape and argument check that keeps its message in release builds.

/// Stops the program with `message` when `condition` is false, in every build configuration.
///
/// Shape and argument checks use this instead of `precondition`, whose message release builds
/// (`-O`) drop: a wrong shape must always say which shapes met, never just trap.
///
/// - Parameters:
///   - condition: What must hold.
///   - message: What went wrong, naming the shapes or values involved; built only on failure.
package func ensure(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() {
        fatalError(message(), file: file, line: line)
    }
}
