// Placeholder until the PerformanceRecords layer lands; see docs/ARCHITECTURE.md.
