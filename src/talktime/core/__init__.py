"""The pure domain: records, metering policies and the reference meter. No IO, no clock, no environment."""
