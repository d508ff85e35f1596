// The sender's kept-open connection: a response's end found from its framing alone, one connection
// for a stream of requests, and a fresh one when the server closed the old one, even under a request.

import CoordinatorClient
import Testing

@Suite("A session keeps one connection to the coordinator", .serialized)
struct HTTPSessionTests {
    static let accepted = Array("HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}".utf8)

    /// Responses whose framing ends them, and where: every strict prefix is incomplete.
    static let framed: [[UInt8]] =
        HTTPResponseParserTests.valid.filter {
            HTTPResponseParser.responseLength($0) != nil
        } + [Array("HTTP/1.1 204 No Content\r\nServer: test\r\n\r\n".utf8)]

    @Test func responseEndsWhereItsFramingSays() {
        // The seeds with Content-Length or chunks, and a 204, are complete at their last byte and not before.
        #expect(Self.framed.count == 4)
        for response in Self.framed {
            #expect(HTTPResponseParser.responseLength(response) == response.count)
            for cut in 0..<response.count {
                #expect(HTTPResponseParser.responseLength(Array(response[..<cut])) == nil, "cut at \(cut)")
            }
            // A second response behind the first does not move its end.
            #expect(HTTPResponseParser.responseLength(response + Self.accepted) == response.count)
        }
        // Without Content-Length or chunks only the server's close ends the body.
        #expect(HTTPResponseParser.responseLength(Array("HTTP/1.1 200 OK\r\n\r\nbody".utf8)) == nil)
        // Framing that cannot be read counts as complete, so the parser reports it at once.
        let unreadable = Array("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}".utf8)
        #expect(HTTPResponseParser.responseLength(unreadable) == unreadable.count)
    }

    @Test func requestsShareOneConnection() throws {
        let server = try ScriptedServer(.answerKeepingOpen(Self.accepted))
        defer { server.stop() }
        let session = HTTPSession(endpoint: server.endpoint)
        for step in 1...3 {
            let response = try session.send("POST", "/v1/jobs/kept/progress", body: Array("{\"step\":\(step)}".utf8))
            #expect(response.status == 202 && response.bodyText == "{}")
        }
        #expect(server.acceptedConnections == 1)
        #expect(server.requests.count == 3 && server.requests.allSatisfy { $0.contains("Connection: keep-alive\r\n") })
    }

    @Test func aClosedConnectionIsReplaced() throws {
        // The server closes after each answer: every request finds the old connection closed.
        let server = try ScriptedServer(.answer(Self.accepted))
        defer { server.stop() }
        let session = HTTPSession(endpoint: server.endpoint)
        for _ in 1...2 { #expect(try session.send("GET", "/healthz").status == 202) }
        #expect(server.acceptedConnections == 2)
    }

    @Test func aRequestLostToAClosingServerIsSentAgain() throws {
        let server = try ScriptedServer(.answerKeepingOpen(Self.accepted))
        defer { server.stop() }
        let session = HTTPSession(endpoint: server.endpoint)
        #expect(try session.send("POST", "/v1/jobs/kept/state", body: Array("{}".utf8)).status == 202)
        // The server takes the next request on the kept connection and closes without an answer.
        server.behave(.closeUnanswered(then: .answerKeepingOpen(Self.accepted)))
        #expect(try session.send("POST", "/v1/jobs/kept/state", body: Array("{}".utf8)).status == 202)
        #expect(server.acceptedConnections == 2 && server.requests.count == 2)
    }

    @Test func aServerThatNeverAnswersEndsTheRequestByItsTimeout() throws {
        let server = try ScriptedServer(.silent)
        defer { server.stop() }
        let session = HTTPSession(endpoint: server.endpoint)
        let error = #expect(throws: HTTPClientError.self) { try session.send("GET", "/healthz", timeout: 0.3) }
        #expect(error?.code == .timedOut)
        #expect(server.acceptedConnections == 1)
    }
}
