// Placeholder until the ImageData layer lands; see docs/ARCHITECTURE.md.
