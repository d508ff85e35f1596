// POSIX file access for checkpoints: crash-safe replacement of a file, and reads that refuse
// anything but a regular file before opening it (so a FIFO cannot block the reader).

#if canImport(Glibc)
import Glibc
#endif

/// Whole-file POSIX reads and crash-safe replacement of files.
package enum POSIXFile {
    /// Replaces (or creates) `path` with the concatenation of `parts`, so that after a crash the
    /// path holds either the old or the complete new contents, never a mix.
    ///
    /// Writes a temporary file in the same directory (same file system, so `rename` is atomic),
    /// `fsync`s it, renames it over `path` and `fsync`s the directory so the rename itself is durable.
    /// On failure the temporary file is removed.
    package static func write(_ parts: [UnsafeRawBufferPointer], to path: String) throws {
        let (directory, fileName) = split(path)
        let temporaryPath = "\(directory)/.\(fileName).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw SafeTensorsError(.fileSystem, path: path, "cannot create \(temporaryPath): \(errorText())")
        }
        var closed = false
        do {
            for part in parts { try writeAll(part, to: descriptor, path: temporaryPath) }
            guard fsync(descriptor) == 0 else {
                throw SafeTensorsError(.fileSystem, path: temporaryPath, "fsync failed: \(errorText())")
            }
            closed = true
            guard close(descriptor) == 0 else {
                throw SafeTensorsError(.fileSystem, path: temporaryPath, "close failed: \(errorText())")
            }
            guard rename(temporaryPath, path) == 0 else {
                throw SafeTensorsError(
                    .fileSystem, path: path, "cannot rename \(temporaryPath) into place: \(errorText())")
            }
        } catch {
            if !closed { close(descriptor) }
            unlink(temporaryPath)
            throw error
        }
        try syncDirectory(directory, for: path)
    }

    /// Opens `path` for reading and calls `body` with the open descriptor (positioned at the start)
    /// and the file's size in bytes.
    ///
    /// A FIFO, device, socket or directory is refused from its `stat` before it is opened (opening a
    /// FIFO would block until a writer appears); the open itself is non-blocking and the descriptor
    /// is checked again, so a file swapped in between cannot block either.
    package static func withOpenFile<R>(
        _ path: String, _ body: (_ descriptor: Int32, _ fileSize: Int) throws -> R
    ) throws -> R {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw SafeTensorsError(.fileSystem, path: path, "cannot stat: \(errorText())")
        }
        try requireRegularFile(status, path)
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { throw SafeTensorsError(.fileSystem, path: path, "cannot open: \(errorText())") }
        defer { close(descriptor) }
        guard fstat(descriptor, &status) == 0 else {
            throw SafeTensorsError(.fileSystem, path: path, "cannot stat: \(errorText())")
        }
        try requireRegularFile(status, path)
        return try body(descriptor, Int(status.st_size))
    }

    private static func requireRegularFile(_ status: stat, _ path: String) throws {
        let kind: String
        switch status.st_mode & S_IFMT {
        case S_IFREG: return
        case S_IFIFO: kind = "a FIFO"
        case S_IFDIR: kind = "a directory"
        case S_IFCHR, S_IFBLK: kind = "a device"
        case S_IFSOCK: kind = "a socket"
        default: kind = "a special file"
        }
        throw SafeTensorsError(.notRegularFile, path: path, "is \(kind), not a regular file; refusing to read it")
    }

    /// Reads exactly `buffer.count` bytes at the descriptor's position.
    package static func readExactly(
        _ buffer: UnsafeMutableRawBufferPointer, from descriptor: Int32, path: String
    ) throws {
        var done = 0
        while done < buffer.count {
            let result = read(descriptor, buffer.baseAddress! + done, buffer.count - done)
            if result < 0 && errno == EINTR { continue }
            guard result >= 0 else { throw SafeTensorsError(.fileSystem, path: path, "read failed: \(errorText())") }
            guard result > 0 else {
                throw SafeTensorsError(.truncated, path: path, "file ended while reading (it shrank while being read)")
            }
            done += result
        }
    }

    private static func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32, path: String) throws {
        var done = 0
        while done < bytes.count {
            let result = Glibc.write(descriptor, bytes.baseAddress! + done, bytes.count - done)
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else { throw SafeTensorsError(.fileSystem, path: path, "write failed: \(errorText())") }
            done += result
        }
    }

    private static func syncDirectory(_ directory: String, for path: String) throws {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw SafeTensorsError(
                .fileSystem, path: path, "cannot open directory \(directory) to sync it: \(errorText())")
        }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else {
            throw SafeTensorsError(.fileSystem, path: path, "fsync of directory \(directory) failed: \(errorText())")
        }
    }

    /// The directory (`.` when none is given) and the last component of `path`.
    private static func split(_ path: String) -> (directory: String, fileName: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = String(path[..<slash])
        return (directory.isEmpty ? "/" : directory, String(path[path.index(after: slash)...]))
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}
