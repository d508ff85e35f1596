// The numbered validation rules of rank tables (docs/RANKTABLE.md) applied to a parsed document, version by
// version and across the whole table; the typed field access they share is in RankTableValidator+Fields.swift.

internal import StrictJSON

/// Applies the numbered rank-table rules (listed in docs/RANKTABLE.md; 1-20 follow HCCL's checks,
/// 21 and later guard what reaches mpirun) to a parsed document, collecting warnings and throwing at
/// the first error. Rule 22, no repeated key, is the parser's (a syntax error).
struct RankTableValidator {
    let file: String
    var warnings: [String] = []

    init(file: String) { self.file = file }

    /// An entry of a JSON object together with where it sits in the document.
    struct Node {
        var value: JSONValue
        var path: String

        func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
    }

    func failure(_ path: String?, _ message: String) -> RankTableError {
        RankTableError(.invalid, file: file, jsonPath: path?.isEmpty == true ? nil : path, message: message)
    }

    mutating func validate(_ document: JSONValue) throws(RankTableError) -> RankTable {
        guard let top = document.fields else {
            throw failure(nil, "must be a JSON object, got \(document.kindName)")
        }
        let root = Node(value: document, path: "")
        // Rule 3: status.
        let status = try requiredString("status", in: top, of: root)
        switch status {
        case "completed": break
        case "initializing":
            throw RankTableError(
                .notReady, file: file, jsonPath: "status",
                message: "rank table not ready (status 'initializing'); "
                    + "regenerate it or wait with --rank-table-wait SECONDS")
        default:
            throw failure("status", "unknown status '\(shown(status))' (expected \"completed\" or \"initializing\")")
        }
        // Rule 4: version.
        let supported = RankTable.Version.allCases.map(\.rawValue).joined(separator: ", ")
        guard top["version"] != nil else {
            if top["group_list"] != nil {
                throw failure(
                    nil,
                    "legacy group_list rank table (no \"version\") is not supported; convert it to version 1.0: "
                        + "one server_list entry per server_id with a device entry {device_id, device_ip, rank_id} "
                        + "per instance, or write a new one with 'ghostnet-d ranktable generate'")
            }
            throw failure(nil, "missing required field 'version' (supported: \(supported))")
        }
        let versionText = try requiredString("version", in: top, of: root)
        guard let version = RankTable.Version(rawValue: versionText) else {
            throw failure("version", "unsupported rank table version '\(shown(versionText))' (supported: \(supported))")
        }
        // Rule 23: group_list is the legacy format's, refused beside a version as without one.
        if top["group_list"] != nil {
            let list = version == .nodeList ? "node_list" : "server_list"
            throw failure(
                "group_list",
                "legacy group_list beside version \"\(versionText)\" is not supported; remove it "
                    + "(a version \(versionText) table lists its hosts in \(list) only)")
        }
        let servers =
            switch version {
            case .serverList, .superPod: try validateServerList(top, root: root, version: version)
            case .nodeList: try validateNodeList(top, root: root)
            }
        try validateRankIDs(servers)
        warnLayout(servers, idKind: version == .nodeList ? "node_addr" : "server_id")
        return RankTable(version: version, servers: servers, warnings: warnings)
    }

    // MARK: Version 1.0 / 1.2

    private mutating func validateServerList(
        _ top: [String: JSONValue], root: Node, version: RankTable.Version
    ) throws(RankTableError) -> [RankTable.Server] {
        // Rules 7-8: server_list non-empty, server_count required and equal to its length.
        let serverNodes = try requiredArray("server_list", in: top, of: root, nonEmptyMessage: "server_list is empty")
        let serverCount = try requiredDecimal("server_count", in: top, of: root)
        guard serverCount == serverNodes.count else {
            throw failure(
                "server_count", "server_count is \"\(serverCount)\" but server_list has \(serverNodes.count) entries")
        }
        var servers: [RankTable.Server] = []
        var serverIDPaths: [String: String] = [:]
        var deviceIPOwners: [String: (path: String, server: Int)] = [:]
        var firstDeviceIP: (count: Int, family: Int32, path: String)?
        for serverNode in serverNodes {
            let server = try object(serverNode)
            // Rule 9: server_id non-empty and unique.
            let serverID = try requiredString("server_id", in: server, of: serverNode)
            guard !serverID.isEmpty else { throw failure(serverNode.child("server_id"), "server_id is empty") }
            // Rule 21: server_id reaches mpirun's hostfile and ssh, so it must be a host name or address.
            if let problem = HostName.problem(with: serverID) {
                let quoted = JSONValue.string(serverID).serialized
                throw failure(
                    serverNode.child("server_id"), "server_id \(quoted) is not a host name or an IP address: \(problem)"
                )
            }
            if let earlier = serverIDPaths[serverID] {
                throw failure(
                    serverNode.child("server_id"), "duplicate server_id '\(serverID)' (\(earlier), \(serverNode.path))")
            }
            serverIDPaths[serverID] = serverNode.path
            _ = try optionalString("host_nic_ip", in: server, of: serverNode)
            // Rule 14: host_ip is an address.
            let hostIP = try optionalString("host_ip", in: server, of: serverNode)
            if let hostIP { _ = try ipAddressFamily(hostIP, path: serverNode.child("host_ip"), field: "host_ip") }
            let deviceNodes = try requiredArray(
                "device", in: server, of: serverNode, nonEmptyMessage: "server '\(serverID)' has no devices")
            try checkRankCount(deviceNodes.count, path: serverNode.child("device"), host: serverID)

            var ranks: [RankTable.Rank] = []
            var deviceIDPaths: [Int: String] = [:]
            var sharedDeviceIPs: Set<String> = []
            for deviceNode in deviceNodes {
                let device = try object(deviceNode)
                let rankID = try requiredDecimal("rank_id", in: device, of: deviceNode)
                let deviceID = try requiredDecimal("device_id", in: device, of: deviceNode)
                // Rule 11: device_id unique per server; the range only matters for Ascend chips.
                if let earlier = deviceIDPaths[deviceID] {
                    throw failure(
                        deviceNode.child("device_id"),
                        "device_id \(deviceID) appears twice on server '\(serverID)' (\(earlier), \(deviceNode.path))")
                }
                deviceIDPaths[deviceID] = deviceNode.path
                if deviceID > 15 {
                    warnings.append(
                        "\(deviceNode.child("device_id")): device_id \(deviceID) is beyond an Ascend host's 0..15 "
                            + "(fine for CPU ranks)")
                }
                // Rule 12: device_ip addresses, unique across servers, same count and family.
                if let deviceIPText = try optionalString("device_ip", in: device, of: deviceNode) {
                    let ipPath = deviceNode.child("device_ip")
                    let addresses = deviceIPText.split(separator: ",", omittingEmptySubsequences: false).map(
                        String.init)
                    for address in addresses {
                        let family = try ipAddressFamily(address, path: ipPath, field: "device_ip")
                        if let first = firstDeviceIP {
                            guard addresses.count == first.count else {
                                throw failure(
                                    ipPath,
                                    "has \(addresses.count) address(es) but \(first.path) has \(first.count); every "
                                        + "device needs the same number")
                            }
                            guard serverNodes.count == 1 || family == first.family else {
                                throw failure(
                                    ipPath,
                                    "mixes IPv4 and IPv6 with \(first.path); a multi-server table needs one family")
                            }
                        } else {
                            firstDeviceIP = (addresses.count, family, ipPath)
                        }
                        if let owner = deviceIPOwners[address] {
                            guard owner.server == servers.count else {
                                throw failure(
                                    ipPath, "device_ip '\(address)' used by two devices (\(owner.path), \(ipPath))")
                            }
                            sharedDeviceIPs.insert(address)
                        } else {
                            deviceIPOwners[address] = (ipPath, servers.count)
                        }
                    }
                } else if serverNodes.count > 1, server["host_ip"] == nil {
                    throw failure(
                        deviceNode.child("device_ip"),
                        "device_ip is required on multi-server tables (\(deviceNode.path)); give the server's address "
                            + "or set host_ip")
                }
                // Rule 14: optional ports and addresses.
                for portKey in ["device_port", "host_port", "device_vnic_port", "backup_device_port"] {
                    if let port = try optionalDecimal(portKey, in: device, of: deviceNode), !(1...65535).contains(port)
                    {
                        throw failure(deviceNode.child(portKey), "port \(port) is outside 1..65535")
                    }
                }
                if let backup = try optionalString("backup_device_ip", in: device, of: deviceNode) {
                    _ = try ipAddressFamily(
                        backup, path: deviceNode.child("backup_device_ip"), field: "backup_device_ip")
                }
                if version == .superPod {
                    _ = try optionalDecimal("super_device_id", in: device, of: deviceNode)
                }
                ranks.append(
                    RankTable.Rank(
                        id: rankID, deviceID: deviceID, serverIndex: servers.count, jsonPath: deviceNode.path))
            }
            if !sharedDeviceIPs.isEmpty {
                warnings.append(
                    "server '\(serverID)': several ranks share device_ip "
                        + "\(sharedDeviceIPs.sorted().joined(separator: ", ")) "
                        + "(fine for CPU ranks; HCCL on Ascend would reject it)")
            }
            servers.append(RankTable.Server(id: serverID, hostIP: hostIP, ranks: ranks))
        }
        // Rule 13: the same number of ranks on every server.
        if let first = servers.first, let other = servers.first(where: { $0.ranks.count != first.ranks.count }) {
            throw failure(
                "server_list",
                "server '\(other.id)' has \(other.ranks.count) device(s), server '\(first.id)' has "
                    + "\(first.ranks.count); "
                    + "every server needs the same number")
        }
        if version == .superPod {
            try validateSuperPods(top, root: root, servers: servers, deviceNodes: serverNodes)
        }
        return servers
    }

    /// Rule 14 for version 1.2: every pod's servers exist, pods cover every server once, and
    /// `super_device_id`s are unique inside a pod.
    private mutating func validateSuperPods(
        _ top: [String: JSONValue], root: Node, servers: [RankTable.Server], deviceNodes serverNodes: [Node]
    ) throws(RankTableError) {
        guard top["super_pod_list"] != nil else {
            warnings.append("version 1.2 table without super_pod_list (ignored for CPU ranks)")
            return
        }
        let pods = try requiredArray(
            "super_pod_list", in: top, of: root, nonEmptyMessage: "super_pod_list is empty")
        let serverIndexByID = Dictionary(uniqueKeysWithValues: servers.enumerated().map { ($1.id, $0) })
        var podIDs: Set<String> = []
        var listed = 0
        for podNode in pods {
            let pod = try object(podNode)
            let podID = try requiredString("super_pod_id", in: pod, of: podNode)
            guard !podID.isEmpty else { throw failure(podNode.child("super_pod_id"), "super_pod_id is empty") }
            guard podIDs.insert(podID).inserted else {
                throw failure(podNode.child("super_pod_id"), "duplicate super_pod_id '\(shown(podID))'")
            }
            var superDeviceOwners: [Int: String] = [:]
            for memberNode in try requiredArray(
                "server_list", in: pod, of: podNode, nonEmptyMessage: "super pod '\(podID)' lists no servers")
            {
                let member = try object(memberNode)
                let serverID = try requiredString("server_id", in: member, of: memberNode)
                guard let serverIndex = serverIndexByID[serverID] else {
                    throw failure(
                        memberNode.child("server_id"),
                        "super_pod_list server_id '\(shown(serverID))' is not in server_list")
                }
                listed += 1
                guard let server = serverNodes[serverIndex].value.fields,
                    case .array(let devices) = server["device"]
                else { continue }
                for (deviceIndex, device) in devices.enumerated() {
                    guard case .string(let text) = device.fields?["super_device_id"],
                        let superDeviceID = Int(text)
                    else { continue }
                    let path = "\(serverNodes[serverIndex].path).device[\(deviceIndex)].super_device_id"
                    if let earlier = superDeviceOwners[superDeviceID] {
                        throw failure(
                            path,
                            "duplicate super_device_id \(superDeviceID) in super pod '\(shown(podID))' (also "
                                + "\(earlier))")
                    }
                    superDeviceOwners[superDeviceID] = path
                }
            }
        }
        guard listed == servers.count else {
            throw failure("super_pod_list", "super pods list \(listed) server(s) but server_list has \(servers.count)")
        }
    }

    // MARK: Version 1.1

    private mutating func validateNodeList(
        _ top: [String: JSONValue], root: Node
    ) throws(RankTableError) -> [RankTable.Server] {
        if let collectiveID = try optionalString("collective_id", in: top, of: root), collectiveID.count > 127 {
            throw failure("collective_id", "collective_id is \(collectiveID.count) characters long (at most 127)")
        }
        if let mode = try optionalString("mode", in: top, of: root), !["tcp", "rdma"].contains(mode) {
            throw failure("mode", "unknown mode '\(shown(mode))' (expected \"tcp\" or \"rdma\")")
        }
        let nodeNodes = try requiredArray("node_list", in: top, of: root, nonEmptyMessage: "node_list is empty")
        var servers: [RankTable.Server] = []
        var addressPaths: [String: String] = [:]
        for nodeNode in nodeNodes {
            let node = try object(nodeNode)
            let address = try requiredString("node_addr", in: node, of: nodeNode)
            _ = try ipAddressFamily(address, path: nodeNode.child("node_addr"), field: "node_addr")
            if let earlier = addressPaths[address] {
                throw failure(
                    nodeNode.child("node_addr"), "duplicate node_addr '\(address)' (\(earlier), \(nodeNode.path))")
            }
            addressPaths[address] = nodeNode.path
            var ranks: [RankTable.Rank] = []
            var deviceIDPaths: [Int: String] = [:]
            let rankNodes = try requiredArray(
                "ranks", in: node, of: nodeNode, nonEmptyMessage: "node '\(address)' has no ranks")
            try checkRankCount(rankNodes.count, path: nodeNode.child("ranks"), host: address)
            for rankNode in rankNodes {
                let rank = try object(rankNode)
                let rankID = try requiredDecimal("rank_id", in: rank, of: rankNode)
                let deviceID = try optionalDecimal("device_id", in: rank, of: rankNode)
                if let deviceID {
                    if let earlier = deviceIDPaths[deviceID] {
                        throw failure(
                            rankNode.child("device_id"),
                            "device_id \(deviceID) appears twice on node '\(address)' (\(earlier), \(rankNode.path))")
                    }
                    deviceIDPaths[deviceID] = rankNode.path
                }
                if let port = try optionalDecimal("port", in: rank, of: rankNode), port > 65535 {
                    throw failure(rankNode.child("port"), "port \(port) is outside 0..65535")
                }
                if let rankIP = try optionalString("rank_ip", in: rank, of: rankNode), !rankIP.isEmpty {
                    _ = try ipAddressFamily(rankIP, path: rankNode.child("rank_ip"), field: "rank_ip")
                }
                ranks.append(
                    RankTable.Rank(id: rankID, deviceID: deviceID, serverIndex: servers.count, jsonPath: rankNode.path))
            }
            servers.append(RankTable.Server(id: address, hostIP: nil, ranks: ranks))
        }
        return servers
    }

    // MARK: Rules across the whole table

    /// Rule 24: at most ``RankTable/maximumRanksPerServer`` ranks on one host, the generator's bound.
    private func checkRankCount(_ count: Int, path: String, host: String) throws(RankTableError) {
        guard count <= RankTable.maximumRanksPerServer else {
            throw failure(
                path, "server '\(host)' has \(count) ranks; at most \(RankTable.maximumRanksPerServer) per server")
        }
    }

    /// Rule 10: rank ids are exactly `0..<N`.
    private func validateRankIDs(_ servers: [RankTable.Server]) throws(RankTableError) {
        let ranks = servers.flatMap(\.ranks)
        var pathByID: [Int: String] = [:]
        for rank in ranks {
            if let earlier = pathByID[rank.id] {
                throw failure(
                    "\(rank.jsonPath).rank_id", "rank_id \(rank.id) used twice (\(earlier), \(rank.jsonPath))")
            }
            pathByID[rank.id] = rank.jsonPath
        }
        let missing = (0..<ranks.count).filter { pathByID[$0] == nil }
        let missingText = missing.map(String.init).joined(separator: ", ")
        if let tooLarge = ranks.first(where: { $0.id >= ranks.count }) {
            throw failure(
                "\(tooLarge.jsonPath).rank_id",
                "rank_id \(tooLarge.id) ≥ number of ranks \(ranks.count) (rank_ids must be 0..\(ranks.count - 1); "
                    + "missing \(missingText))")
        }
    }

    /// Rule 15: layouts launch scripts assume, as warnings.
    private mutating func warnLayout(_ servers: [RankTable.Server], idKind: String) {
        var previousEnd = -1
        for server in servers {
            let ids = server.ranks.map(\.id)
            let sorted = ids.sorted()
            if sorted != Array(sorted[0]..<sorted[0] + sorted.count) {
                warnings.append(
                    "server '\(server.id)' ranks [\(ids.map(String.init).joined(separator: ","))] are not contiguous; "
                        + "SERVER_ID-based launch scripts and hostfile slot mapping will mis-assign ranks")
            } else if sorted[0] < previousEnd {
                warnings.append(
                    "server '\(server.id)' ranks start at \(sorted[0]), before the previous server's; "
                        + "blocks should increase along the list")
            }
            previousEnd = sorted.last! + 1
            let devices = server.ranks.compactMap(\.deviceID)
            if devices.count == ids.count, zip(ids, devices).sorted(by: { $0.0 < $1.0 }).map(\.1) != devices.sorted() {
                warnings.append("server '\(server.id)': rank order does not follow device_id order")
            }
        }
        let serverIDs = servers.map(\.id)
        if serverIDs != serverIDs.sorted() {
            warnings.append("servers are not in lexicographic \(idKind) order (MindSpore's multi-host convention)")
        }
    }
}
