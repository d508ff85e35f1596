// The check every Interop writer makes before reading its inputs: the output path can take a file.

#if canImport(Glibc)
import Glibc
#endif

/// Checks an output path up front, so that a long export does not fail only at its rename.
enum OutputPath {
    /// - Throws: ``InteropError`` `.badOutputPath` when `path` is a directory or its folder does
    ///   not exist.
    static func check(_ path: String) throws(InteropError) {
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR {
            throw InteropError(.badOutputPath, file: path, "is a directory; expected the path of a file to write")
        }
        let folder = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        guard stat(folder.isEmpty ? "/" : folder, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw InteropError(.badOutputPath, file: path, "its folder '\(folder)' does not exist")
        }
    }
}
