"""Type stubs for the C extension yt_dlp_async._engine (see csrc/module.c)."""

from typing import Any, Sequence

class EngineError(RuntimeError): ...

class Engine:
    closed: bool
    def __init__(
        self,
        max_connections: int = ...,
        max_host_connections: int = ...,
        connect_timeout: float = ...,
        stall_timeout: float = ...,
        max_retries: int = ...,
        retry_base_delay: float = ...,
        retry_max_delay: float = ...,
        rate_limit: int = ...,
        buffer_size: int = ...,
    ) -> None: ...
    def submit(
        self,
        url: str,
        path: str | None = ...,
        *,
        fileno: int = ...,
        headers: Sequence[tuple[str, str]] | None = ...,
        range_start: int = ...,
        range_end: int = ...,
        offset: int = ...,
        expected_size: int = ...,
        truncate: bool = ...,
        if_range: str | None = ...,
        priority: int = ...,
        cookies: Sequence[str] | None = ...,
        proxy: str | None = ...,
        source_address: str | None = ...,
        verify: bool = ...,
        ca_file: str | None = ...,
        ca_path: str | None = ...,
        client_cert: str | None = ...,
        client_key: str | None = ...,
        client_key_password: str | None = ...,
        max_filesize: int = ...,
        max_retries: int = ...,
        connections: int = ...,  # 0: auto
        min_piece: int = ...,
        max_request: int = ...,
        state_path: str | None = ...,
        memory: bool = ...,
        max_memory: int = ...,
        hold_new_validator: bool = ...,
        auth_to_other_hosts: bool = ...,
    ) -> Task: ...
    def body_memory(self) -> tuple[int, int]: ...
    def close(self) -> None: ...
    def subscribe(self, fd: int, /) -> None: ...
    def unsubscribe(self, fd: int, /) -> None: ...
    def set_rate_limit(self, rate: int, /) -> None: ...
    def stats(self) -> dict[str, int | float]: ...
    def __enter__(self) -> Engine: ...
    def __exit__(self, *args: object) -> bool: ...

class Task:
    id: int
    url: str
    path: str | None
    def done(self) -> bool: ...
    def wait(self, timeout: float | None = ...) -> bool: ...
    def cancel(self) -> None: ...
    def set_priority(self, priority: int, /) -> None: ...
    def release(self, hold: int, /) -> None: ...
    def info(self) -> dict[str, Any]: ...
    def take_body(self) -> bytes: ...
    def append_body(
        self, fileno: int, key: bytes | None = ..., iv: bytes | None = ..., keep: str | None = ...
    ) -> int: ...

BUILD_FEATURES: tuple[str, ...]

def curl_version() -> str: ...
def wakeup_fds() -> tuple[int, int]: ...
def aes128_cbc_decrypt(data: bytes, key: bytes, iv: bytes, unpad: bool = ...) -> bytes: ...
def curl_features() -> dict[str, Any]: ...
def body_bytes_to_python() -> int: ...
