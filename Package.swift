// swift-tools-version:6.0
//
// ghostnet-d: data-parallel GhostNet-D training on CPU clusters.
//
// Layers, bottom up (imports only point down; see docs/ARCHITECTURE.md):
//   C shims      COpenBLAS (+ CGEMMKernels), CJPEG (+ CJPEGShims), CMPI
//   formats      StrictJSON                         (pure Swift, no dependencies; also CRC-32C)
//   engine       TensorEngine                       (imports COpenBLAS, CGEMMKernels)
//   model        Layers -> GhostNet -> Checkpoints -> Interop  (Checkpoints also imports StrictJSON;
//                Interop: ONNX export, MindSpore import, checkpoint averaging)
//   data         ImageData                          (imports CJPEG*, TensorEngine)
//   distributed  Distributed                        (imports CMPI, TensorEngine, StrictJSON)
//   records      PerformanceRecords                 (imports StrictJSON; shared by training and coordinator)
//   client       CoordinatorClient                  (imports PerformanceRecords; the workers' HTTP client and spool)
//   top          Training (imports Interop for `train --init-from`), Coordinator
//   supervisor   Supervisor                         (`ghostnet-d launch`: exit causes, restarts; imports Training)
//   tools        Benchmarks                         (benchmarks, self-checks, load tester; imports the libraries)
//   CLI          GhostNetCLI (the `ghostnet-d` executable)
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("MemberImportVisibility")
]

let package = Package(
    name: "ghostnet-d",
    products: [
        .executable(name: "ghostnet-d", targets: ["GhostNetCLI"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
    ],
    targets: [
        // MARK: - Native libraries (system-library targets found by pkg-config)

        .systemLibrary(
            name: "COpenBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CJPEG", pkgConfig: "libjpeg",
            providers: [.apt(["libjpeg62-turbo-dev"])]),
        .target(
            name: "CJPEGShims",
            dependencies: ["CJPEG"]),
        .target(name: "CGEMMKernels"),
        .systemLibrary(
            name: "CMPI", pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),

        // MARK: - Swift layers

        .target(
            name: "StrictJSON",
            swiftSettings: swiftSettings),
        .target(
            name: "TensorEngine",
            dependencies: [
                "COpenBLAS",
                "CGEMMKernels",
                .product(name: "RealModule", package: "swift-numerics"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "Layers",
            dependencies: ["TensorEngine"],
            swiftSettings: swiftSettings),
        .target(
            name: "GhostNet",
            dependencies: ["Layers", "TensorEngine"],
            swiftSettings: swiftSettings),
        .target(
            name: "Checkpoints",
            dependencies: ["GhostNet", "Layers", "TensorEngine", "StrictJSON"],
            swiftSettings: swiftSettings),
        .target(
            name: "Interop",
            dependencies: ["Checkpoints", "GhostNet", "TensorEngine"],
            swiftSettings: swiftSettings),
        .target(
            name: "ImageData",
            dependencies: ["CJPEGShims", "TensorEngine"],
            swiftSettings: swiftSettings),
        .target(
            name: "Distributed",
            dependencies: ["CMPI", "TensorEngine", "StrictJSON"],
            swiftSettings: swiftSettings),
        .target(
            name: "PerformanceRecords",
            dependencies: ["StrictJSON"],
            swiftSettings: swiftSettings),
        .target(
            name: "CoordinatorClient",
            dependencies: [
                "PerformanceRecords", "StrictJSON",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "Coordinator",
            dependencies: [
                "PerformanceRecords", "StrictJSON",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "Training",
            dependencies: [
                "GhostNet", "Checkpoints", "Interop", "Layers", "ImageData", "Distributed", "PerformanceRecords",
                "StrictJSON", "CoordinatorClient", "TensorEngine",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "Supervisor",
            dependencies: [
                "Training", "Checkpoints", "Distributed", "PerformanceRecords", "TensorEngine",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .target(
            name: "Benchmarks",
            dependencies: [
                "Training", "GhostNet", "ImageData", "Distributed", "TensorEngine", "PerformanceRecords",
                "CoordinatorClient", "StrictJSON",
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "GhostNetCLI",
            dependencies: [
                "Training", "GhostNet", "Checkpoints", "ImageData", "Distributed", "PerformanceRecords", "TensorEngine",
                "Coordinator", "CoordinatorClient", "Benchmarks", "Interop", "Supervisor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),

        // MARK: - Test support and unit test bundles

        .target(
            name: "_TestSupport",
            dependencies: ["TensorEngine", "ImageData", "GhostNet"],
            path: "Tests/_TestSupport",
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TensorEngineTests",
            dependencies: ["TensorEngine", "_TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "TrainingTests",
            dependencies: [
                "Training", "GhostNet", "Checkpoints", "Layers", "ImageData", "Distributed", "TensorEngine",
                "_TestSupport", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "GhostNetTests",
            dependencies: ["GhostNet", "Layers", "TensorEngine", "_TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "CheckpointsTests",
            dependencies: ["Checkpoints", "GhostNet", "Layers", "TensorEngine", "_TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "InteropTests",
            dependencies: ["Interop", "Checkpoints", "GhostNet", "Layers", "TensorEngine", "_TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "LayersTests",
            dependencies: ["Layers", "TensorEngine", "_TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "PerformanceRecordsTests",
            dependencies: ["PerformanceRecords", "StrictJSON", "_TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "CoordinatorTests",
            dependencies: [
                "Coordinator", "CoordinatorClient", "Benchmarks", "PerformanceRecords", "StrictJSON", "TensorEngine",
                "_TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "DistributedTests",
            dependencies: ["Distributed", "TensorEngine", "_TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "ImageDataTests",
            dependencies: ["ImageData", "TensorEngine", "_TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "StrictJSONTests",
            dependencies: ["StrictJSON", "_TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "BenchmarksTests",
            dependencies: ["Benchmarks", "TensorEngine", "_TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "CoordinatorClientTests",
            dependencies: ["CoordinatorClient", "PerformanceRecords", "_TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "SupervisorTests",
            dependencies: ["Supervisor", "Distributed", "Training", "Checkpoints", "_TestSupport"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "CLITests",
            dependencies: [
                "GhostNetCLI", "GhostNet", "Checkpoints", "ImageData", "TensorEngine", "PerformanceRecords",
                "CoordinatorClient", "_TestSupport",
            ],
            swiftSettings: swiftSettings),
    ]
)
