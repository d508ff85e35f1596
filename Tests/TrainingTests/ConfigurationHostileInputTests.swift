// Hostile configuration files (issue 19, class 5): alias bombs, tags, YAML 1.1 forms, empty values and
// numbers near the type's limits are refused by the one validator, with the file, line and key named.

import Distributed
import Foundation
import Testing
import Training
import _TestSupport

/// The error `yaml` (with `assignments` as `--set` overrides) is refused with.
private func refusal(
    _ yaml: String, set assignments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
) throws -> ConfigurationError {
    let overrides = try ConfigurationOverride.parsing(assignments, file: "bad.yml")
    do {
        let configuration = try TrainingConfiguration.parse(
            yaml: yaml, file: "bad.yml", overrides: overrides, currentDirectory: configurationRunDirectory)
        Issue.record("accepted:\n\(configuration.resolvedYAML)", sourceLocation: sourceLocation)
        return ConfigurationError(file: "bad.yml", issues: [])
    } catch {
        return error
    }
}

/// `minimalTraining` with `epochs: <value>` in its trainer section (line 10; the value starts at column 17).
private func withEpochs(_ value: String) -> String { minimalTraining + "\n    trainer:\n        epochs: \(value)\n" }

@Suite struct ConfigurationHostileInputTests {
    /// The billion laughs: nine levels of nine aliases, 387 million strings once expanded.
    static let aliasBomb =
        (["a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]"]
        + zip("bcdefghi", "abcdefgh").map { name, previous in
            "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]"
        }).joined(separator: "\n") + "\n"

    @Test func anAliasBombIsRefusedBeforeItExpands() throws {
        let start = ContinuousClock.now
        let error = try refusal(Self.aliasBomb)
        let elapsed = ContinuousClock.now - start
        #expect(
            error.description == """
                invalid configuration bad.yml:
                  bad.yml:1:4: `&a`: YAML anchors and aliases are not accepted in configuration files (an alias can \
                expand exponentially); write the value out, or quote text starting with & or *
                """)
        // Expanded, the bomb takes minutes and gigabytes; refused, it costs one scan of 350 bytes.
        #expect(elapsed < .seconds(1), "took \(elapsed)")
    }

    @Test(arguments: [
        ("fully_train: *base\n", "bad.yml:1:14: `*base`"),
        ("pipeline: [fully_train]\nfully_train:\n    <<: *defaults\n", "bad.yml:3:9: `*defaults`"),
        ("{? *key : 1}\n", "bad.yml:1:4: `*key`"),
    ])
    func everyAliasIsRefused(yaml: String, start: String) throws {
        let issue = try #require(try refusal(yaml).issues.first)
        #expect(issue.kind == .malformedYAML)
        #expect(issue.description.hasPrefix(start), "\(issue)")
    }

    @Test func starsAndAmpersandsInsideWordsAndPathsAreText() throws {
        let yaml =
            minimalTraining.replacingOccurrences(of: "/data/imagenet", with: "/data/a&b/*.d")
            + "\nruntime:\n    job_name: x*y&z\n"
        let configuration = try TrainingConfiguration.parse(
            yaml: yaml, file: "ok.yml", currentDirectory: configurationRunDirectory)
        #expect(configuration.fullyTrain?.dataset.dataPath == "/data/a&b/*.d")
        #expect(configuration.runtime.jobName == "x*y&z")
    }

    @Test func unknownTagsAreRefused() throws {
        let error = try refusal(withEpochs("!!python/object:os.system 3"))
        #expect(
            error.issues.map(\.description) == [
                "bad.yml:10:17: fully_train.trainer.epochs: unsupported YAML tag `!!python/object:os.system`; "
                    + "configuration values take no tags beyond !!str, !!int, !!float, !!bool, !!null, !!seq and !!map"
            ])
        #expect(
            try refusal(withEpochs("!local 3")).issues.first?.message.hasPrefix("unsupported YAML tag `!local`") == true
        )
    }

    @Test func yaml11NumbersAreNotNumbers() throws {
        #expect(
            try refusal(withEpochs("1:30")).issues.map(\.description) == [
                "bad.yml:10:17: fully_train.trainer.epochs: expected an integer in [1, 100000], got `1:30`"
            ])
        #expect(try refusal(withEpochs("0x1F")).issues.first?.kind == .wrongType)
        let yes = minimalTraining + "\n    trainer:\n        mixup: yes\n"
        #expect(
            try refusal(yes).issues.map(\.description) == [
                "bad.yml:10:16: fully_train.trainer.mixup: expected True or False, got `yes`"
            ])
    }

    @Test func anEmptyValueIsAnErrorNotTheDefault() throws {
        let issues = try refusal(withEpochs("")).issues
        #expect(issues.count == 1)
        #expect(issues.first?.keyPath == "fully_train.trainer.epochs")
        #expect(
            issues.first?.message
                == "expected an integer in [1, 100000], got nothing; remove the key to use the default")
        #expect(issues.first?.origin.hasPrefix("bad.yml:10:") == true, "\(issues)")
    }

    @Test(arguments: [
        (
            "fully_train.model.model_desc.width=4611686018427387904",
            "expected an integer in [2, 1024], got `4611686018427387904`"
        ),
        ("fully_train.model.model_desc.image_size=100000", "expected an integer in [8, 4096], got `100000`"),
        (
            "fully_train.trainer.epochs=9223372036854775807",
            "expected an integer in [1, 100000], got `9223372036854775807`"
        ),
        (
            "fully_train.dataset.common.batch_size=9223372036854775807",
            "expected an integer in [1, 65536], got `9223372036854775807`"
        ),
        (
            "fully_train.dataset.common.workers=99999999999999999999",
            "expected an integer in [0, 256], got `99999999999999999999`"
        ),
        ("fully_train.trainer.optimizer.params.lr=1e300", "expected a number in (0, 100], got `1e300`"),
        ("runtime.bucket_mib=1e300", "expected a number in (0, 4096], got `1e300`"),
        ("runtime.collective_timeout=.inf", "expected a number in (0, 86400], got `.inf`"),
        ("runtime.collective_timeout=.nan", "expected a number in (0, 86400], got `.nan`"),
        ("runtime.threads=1000000", "expected an integer in [0, 1024], got `1000000`"),
        ("runtime.keep_checkpoints=-1", "expected an integer in [1, 1000], got `-1`"),
        ("runtime.save_steps=9223372036854775807", "expected an integer in [0, 1000000000], got `9223372036854775807`"),
        ("general.seed=-1", "expected an integer in [0, 4294967295], got `-1`"),
    ])
    func numbersNearTheLimitsAreOutOfRange(assignment: String, message: String) throws {
        let issues = try refusal(minimalTraining, set: [assignment]).issues
        #expect(
            issues.map(\.description) == ["--set \(assignment): \(assignment.split(separator: "=")[0]): \(message)"])
    }

    @Test func batchesTooLargeToAllocateAreRefused() throws {
        let issues = try refusal(
            minimalTraining,
            set: [
                "fully_train.dataset.common.batch_size=65536", "fully_train.model.model_desc.image_size=1024",
            ]
        ).issues
        #expect(
            issues.map(\.keyPath) == ["fully_train.dataset.common.batch_size", "fully_train.dataset.val.batch_size"])
        #expect(
            issues.first?.message == "is 65536: a batch of 65536 × 3 × 1024² floats exceeds the limit of 2147483648 "
                + "(8 GiB); lower the batch size or image_size")
    }

    @Test func aNetworkGhostNetCannotBuildIsRefusedByCheckToo() throws {
        let issues = try refusal(
            minimalTraining,
            set: [
                "fully_train.model.model_desc.width=1024", "fully_train.model.model_desc.blocks=[64, 64, 64, 64]",
            ]
        ).issues
        #expect(issues.count == 1)
        #expect(issues.first?.keyPath == "fully_train.model.model_desc")
        #expect(issues.first?.message.hasPrefix("describes no network GhostNet can build: ") == true, "\(issues)")
    }

    @Test func aTextOverOneMebibyteIsRefused() throws {
        let yaml = minimalTraining + "\n# " + String(repeating: "x", count: 1 << 20) + "\n"
        #expect(
            try refusal(yaml).issues.map(\.description) == [
                "bad.yml: the text is \(yaml.utf8.count) bytes; a configuration is at most 1 MiB"
            ])
    }
}

@Suite struct ConfigurationFlagTests {
    private let fileWith300 = minimalTraining + "\nruntime:\n    collective_timeout: 300\n"

    @Test func aGivenFlagOverridesTheFileEvenWithTheDefaultValue() throws {
        let flag = try #require(
            ConfigurationOverride(
                flag: "--collective-timeout", key: ConfigurationKeys.collectiveTimeout, value: 600.0))
        let configuration = try TrainingConfiguration.parse(
            yaml: fileWith300, file: "run.yml", overrides: [flag], currentDirectory: configurationRunDirectory)
        expectClose(configuration.runtime.collectiveTimeout, 600)
    }

    @Test func aFlagNotGivenLeavesTheFilesValue() throws {
        let absent: Double? = nil
        #expect(
            ConfigurationOverride(flag: "--collective-timeout", key: ConfigurationKeys.collectiveTimeout, value: absent)
                == nil)
        let configuration = try TrainingConfiguration.parse(
            yaml: fileWith300, file: "run.yml", currentDirectory: configurationRunDirectory)
        expectClose(configuration.runtime.collectiveTimeout, 300)
    }

    @Test func theDistributedDefaultsLiveInOnePlace() {
        expectClose(ConfigurationKeys.collectiveTimeout.defaultSetting, DistributedDefaults.collectiveTimeout.inSeconds)
        expectClose(ConfigurationKeys.collectiveTimeout.defaultSetting, 600)
        expectClose(ConfigurationKeys.bucketMebibytes.defaultSetting, 25)
        #expect(ConfigurationKeys.bucketCapacityBytes(mebibytes: 25) == DistributedDefaults.bucketCapacityBytes)
    }

    @Test func aFlagIsCheckedWithItsKeysRange() {
        #expect(
            ConfigurationKeys.collectiveTimeout.problem(with: 1e300) == "expected a number in (0, 86400], got 1e+300")
        #expect(ConfigurationKeys.epochs.problem(with: -1) == "expected an integer in [1, 100000], got -1")
        #expect(ConfigurationKeys.epochs.problem(with: 3) == nil)
    }
}
