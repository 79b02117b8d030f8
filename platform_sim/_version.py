"""The version of platform-sim (read by the build backend and recorded in every manifest)."""

__version__ = "0.1.0"
