import Foundation
import NIOCore
import PostgresNIO

/// One column of a bulk insert as an array parameter (`int8[]`,
/// `float8[]`, `text[]` or `bytea[]`) in PostgreSQL's binary array format,
/// written in one loop over the values. postgres-nio's own `[Int64]`,
/// `[Double]`, `[String]` and `[ByteBuffer]` encode each element through
/// its generic encoder (a length placeholder set afterwards, a capacity
/// check per write), and bytes had first to be copied into a `ByteBuffer`
/// of their own, an allocation for every id, record and span body.
struct PostgresBinaryArray: PostgresDynamicTypeEncodable {
    enum Values {
        case int8([Int64])
        case float8([Double])
        case text([String])
        case bytea([Data])
    }

    var values: Values

    init(_ values: Values) { self.values = values }

    /// The element's type, the array's, and the array's name in SQL.
    private var types: (element: PostgresDataType, array: PostgresDataType, sql: String) {
        switch values {
        case .int8: (.int8, .int8Array, "int8[]")
        case .float8: (.float8, .float8Array, "float8[]")
        case .text: (.text, .textArray, "text[]")
        case .bytea: (.bytea, .byteaArray, "bytea[]")
        }
    }

    var psqlType: PostgresDataType { types.array }

    var psqlFormat: PostgresFormat { .binary }

    /// The array's type in SQL, for a cast of its parameter.
    var sqlType: String { types.sql }

    var count: Int {
        switch values {
        case .int8(let v): v.count
        case .float8(let v): v.count
        case .text(let v): v.count
        case .bytea(let v): v.count
        }
    }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        // The header: dimensions (none for an empty array), no NULLs, and
        // the element type; then the one dimension's length and lower bound.
        let n = count
        buffer.writeInteger(n == 0 ? 0 : 1, as: Int32.self)
        buffer.writeInteger(0, as: Int32.self)
        buffer.writeInteger(types.element.rawValue)
        guard n > 0 else { return }
        buffer.writeInteger(Int32(n))
        buffer.writeInteger(1, as: Int32.self)
        // Each element: its length, then its bytes.
        switch values {
        case .int8(let v):
            buffer.reserveCapacity(minimumWritableBytes: 12 * n)
            for x in v {
                buffer.writeInteger(8, as: Int32.self)
                buffer.writeInteger(x)
            }
        case .float8(let v):
            buffer.reserveCapacity(minimumWritableBytes: 12 * n)
            for x in v {
                buffer.writeInteger(8, as: Int32.self)
                buffer.writeInteger(x.bitPattern)
            }
        case .text(let v):
            buffer.reserveCapacity(minimumWritableBytes: v.reduce(4 * n) { $0 + $1.utf8.count })
            for s in v {
                buffer.writeInteger(Int32(s.utf8.count))
                buffer.writeString(s)
            }
        case .bytea(let v):
            buffer.reserveCapacity(minimumWritableBytes: v.reduce(4 * n) { $0 + $1.count })
            for bytes in v {
                buffer.writeInteger(Int32(bytes.count))
                buffer.writeBytes(bytes)
            }
        }
    }
}
