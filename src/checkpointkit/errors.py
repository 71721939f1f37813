"""The one error hierarchy of checkpointkit.

Every error the package raises on purpose is a ``CheckpointKitError``. Each
class also inherits the nearest builtin, so callers' existing ``except
ValueError`` / ``except ImportError`` clauses keep working::

    CheckpointKitError(Exception)
    ├── ConfigurationError(ValueError)          bad argument or config
    │   ├── MissingThreadIdError                no configurable.thread_id
    │   ├── InvalidFilterError                  unusable metadata filter
    │   └── UnknownStrategyError                unknown prune strategy
    ├── UnknownCheckpointError(LookupError)     no such thread or checkpoint (tools, CLI)
    ├── ThreadConflictError(RuntimeError)       a copy target holds a different thread
    ├── MissingDependencyError(ImportError)     optional extra not installed
    ├── BackendUnavailableError(ConnectionError) server unreachable / dropped
    ├── SchemaVersionError(RuntimeError)        database written by a newer version
    ├── LockTimeoutError(TimeoutError)          database stayed locked too long
    ├── WriteConflictError(RuntimeError)        another writer holds the thread
    ├── CorruptDataError(ValueError)            a stored row or blob cannot be read
    └── SerializationError(ValueError)          a value cannot be (de)serialized
        ├── UnknownTypeError                    type not on the allowlist
        └── DecryptionError                     wrong key, tampered or misplaced ciphertext

Driver exceptions are translated at the boundary and chained with
``raise ... from exc`` so the original cause stays visible.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "CheckpointKitError",
    "ConfigurationError",
    "CorruptDataError",
    "DecryptionError",
    "InvalidFilterError",
    "LockTimeoutError",
    "MissingDependencyError",
    "MissingThreadIdError",
    "SchemaVersionError",
    "SerializationError",
    "ThreadConflictError",
    "UnknownCheckpointError",
    "UnknownStrategyError",
    "UnknownTypeError",
    "WriteConflictError",
]


class CheckpointKitError(Exception):
    """Base class of every error checkpointkit raises on purpose."""


class ConfigurationError(CheckpointKitError, ValueError):
    """An argument or a `RunnableConfig` is malformed."""


class MissingThreadIdError(ConfigurationError, KeyError):
    """The config has no `configurable.thread_id`."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "missing thread_id"


class InvalidFilterError(ConfigurationError):
    """A metadata filter cannot be applied (bad key or value type)."""


class UnknownStrategyError(ConfigurationError):
    """A prune strategy name is not one of the supported ones."""


class UnknownCheckpointError(CheckpointKitError, LookupError):
    """The thread or checkpoint asked for is not in the checkpointer."""


class ThreadConflictError(CheckpointKitError, RuntimeError):
    """A copy's target already holds a different version of a thread; it is not overwritten."""


class MissingDependencyError(CheckpointKitError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    @classmethod
    def for_extra(cls, feature: str, extra: str, module: str) -> MissingDependencyError:
        return cls(
            f"{feature} needs the '{module}' package, which is not installed. "
            f"Install it with: pip install 'checkpointkit[{extra}]'"
        )


class BackendUnavailableError(CheckpointKitError, ConnectionError):
    """The storage server cannot be reached, or the connection dropped."""


class SchemaVersionError(CheckpointKitError, RuntimeError):
    """The stored schema is newer than this version of checkpointkit understands."""


class LockTimeoutError(CheckpointKitError, TimeoutError):
    """The database stayed locked by another writer for longer than the timeout."""


class WriteConflictError(CheckpointKitError, RuntimeError):
    """Another writer stored a newer checkpoint in this thread (single-writer guard).

    Attributes:
        thread_id: The thread written to.
        checkpoint_ns: The namespace written to.
        parent_id: The checkpoint the refused put builds on (None: none).
        newest_id: The newest checkpoint stored there when it was refused.
    """

    def __init__(
        self,
        message: str,
        *,
        thread_id: str = "",
        checkpoint_ns: str = "",
        parent_id: str | None = None,
        newest_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.thread_id = thread_id
        self.checkpoint_ns = checkpoint_ns
        self.parent_id = parent_id
        self.newest_id = newest_id


class CorruptDataError(CheckpointKitError, ValueError):
    """A stored row or blob is malformed and cannot be decoded."""


class SerializationError(CheckpointKitError, ValueError):
    """A value cannot be serialized, or a blob cannot be deserialized."""


class UnknownTypeError(SerializationError):
    """A blob names a type that is not on the deserialization allowlist."""


class DecryptionError(SerializationError):
    """A ciphertext fails authentication: wrong key, tampered, or moved elsewhere."""
