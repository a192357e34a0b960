"""talktime: provider-agnostic metering and billing for Voice AI; every billed minute explains itself."""

__version__ = "0.1.0"
