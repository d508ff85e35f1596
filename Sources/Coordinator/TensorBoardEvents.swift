// TensorBoard's event-file format, written with the project's own protobuf writer so the coordinator
// needs no protobuf library: `Event` messages with scalar summaries, and the TFRecord framing
// (length, masked CRC-32C of the length, data, masked CRC-32C of the data) around each one.

import StrictJSON

/// `tensorflow.Event` messages (event.proto: wall_time 1, step 2, file_version 3, summary 5) with
/// `Summary` (value 1) of `Summary.Value` (tag 1, simple_value 2).
package enum TensorBoardEvent {
    /// The first event of every file; readers use it to recognise the format.
    package static let fileVersion = "brain.Event:2"

    /// The event that opens a file.
    package static func fileVersionEvent(wallTime: Double) -> [UInt8] {
        var event = ProtobufWriter()
        event.double(1, wallTime)
        event.string(3, fileVersion)
        return event.bytes
    }

    /// One event holding a scalar summary per `(tag, value)` at `step`.
    package static func scalarsEvent(_ scalars: [(tag: String, value: Double)], step: Int, wallTime: Double)
        -> [UInt8]
    {
        var event = ProtobufWriter()
        event.double(1, wallTime)
        event.integer(2, step)
        event.message(5) { summary in
            for scalar in scalars {
                summary.message(1) { value in
                    value.string(1, scalar.tag)
                    value.float(2, Float(scalar.value))
                }
            }
        }
        return event.bytes
    }
}

/// TFRecord framing: `uint64 length`, `uint32 masked_crc32c(length)`, the data, `uint32
/// masked_crc32c(data)`, all little-endian.
package enum TFRecord {
    /// The CRC-32C of `bytes`, rotated right by 15 bits plus 0xa282ead8: TFRecord stores this "masked"
    /// form, because a CRC over data that itself embeds CRCs is weak.
    package static func maskedCRC(_ bytes: some Sequence<UInt8>) -> UInt32 {
        let crc = CRC32C.checksum(bytes)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// `data` framed as one record.
    package static func framed(_ data: [UInt8]) -> [UInt8] {
        var record: [UInt8] = []
        record.reserveCapacity(data.count + 16)
        withUnsafeBytes(of: UInt64(data.count).littleEndian) { record.append(contentsOf: $0) }
        withUnsafeBytes(of: maskedCRC(record).littleEndian) { record.append(contentsOf: $0) }
        record.append(contentsOf: data)
        withUnsafeBytes(of: maskedCRC(data).littleEndian) { record.append(contentsOf: $0) }
        return record
    }
}
