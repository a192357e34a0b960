"""Helpers shared by test suites (database servers, event builders); importable as ``support``."""
