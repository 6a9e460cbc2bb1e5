"""SyncMemory: the ``MemoryStack`` API, blocking, for apps that are not async.

One private event loop runs on a daemon thread for the life of the object; every call is
sent to it (``asyncio.run_coroutine_threadsafe``) and waited for, so connection pools and
queues stay bound to one live loop (``asyncio.run()`` per call fails on server stacks with
``RuntimeError: Event loop is closed``). Calls from several threads are safe: they run
concurrently on that loop, as concurrent coroutines of an async app would.

The blocking methods are generated from ``MemoryStack``'s own (``_blocking``), so their
signatures and types are the façade's; ``SYNC_METHODS`` lists them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent import futures
from concurrent.futures import Future
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from bruno_memory.build import build_memory
from bruno_memory.config import StackConfig
from bruno_memory.config.loader import Source
from bruno_memory.core.errors import Closed, InvalidInput
from bruno_memory.stack.admin import AccessHook, AdminMemory
from bruno_memory.stack.facade import MemoryStack
from bruno_memory.stack.scoped import ScopedMemory

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)


class _Runner(Protocol[S_co]):
    """What runs a call on the loop thread, given the object it is made on."""

    def _run(self, call: Callable[[S_co], Awaitable[R]]) -> R: ...


class _Blocking(Generic[S, P, R]):
    """A class attribute turning an async method (of ``MemoryStack``, or of the handle a
    ``SyncScoped`` wraps) into a blocking one."""

    def __init__(self, method: Callable[Concatenate[S, P], Awaitable[R]]) -> None:
        self.method = method
        self.__doc__ = method.__doc__
        self.name = method.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Blocking[S, P, R]: ...
    @overload
    def __get__(self, obj: _Runner[S], owner: type | None = None) -> Callable[P, R]: ...
    def __get__(
        self, obj: _Runner[S] | None, owner: type | None = None
    ) -> _Blocking[S, P, R] | Callable[P, R]:
        if obj is None:
            return self
        method, runner = self.method, obj

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return runner._run(lambda target: method(target, *args, **kwargs))

        call.__name__ = call.__qualname__ = self.name
        call.__doc__ = self.__doc__
        return call


def _blocking(method: Callable[Concatenate[S, P], Awaitable[R]]) -> _Blocking[S, P, R]:
    return _Blocking(method)


class SyncMemory:
    """A memory stack with blocking methods: ``MemoryStack``'s API without ``await``.

    Build one with ``SyncMemory.build(source)`` (what ``build_memory`` takes: a YAML path or
    text, a shipped stack's name such as ``"laptop"``, a dict, ``None`` for the embedded
    default) and close it (``close()`` or ``with``): closing drains queued writes, closes
    the stack and stops the loop thread. Every later call raises ``Closed``.

    A call made from the loop thread itself (e.g. a callback running on it) would wait for
    itself: it raises ``InvalidInput`` instead.
    """

    def __init__(self, opener: Callable[[], Coroutine[Any, Any, MemoryStack]]) -> None:
        """Start the loop thread and open the stack ``opener`` builds on it (prefer
        ``build``)."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="bruno-memory-sync", daemon=True)
        self._lock = threading.Lock()
        self._closed = False
        self._running: set[Future[Any]] = set()  # calls sent and not answered yet
        self._thread.start()
        try:
            self._stack: MemoryStack = self._submit(opener()).result()
        except BaseException:
            self._stop()
            raise

    @classmethod
    def build(cls, source: Source | StackConfig = None, **options: Any) -> SyncMemory:
        """Build and open a stack as ``build_memory(source, **options)`` does, on the
        loop thread of a new ``SyncMemory``."""
        return cls(lambda: build_memory(source, **options))

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _submit(self, coro: Coroutine[Any, Any, R]) -> Future[R]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _run(self, call: Callable[[MemoryStack], Awaitable[R]]) -> R:
        if threading.current_thread() is self._thread:
            raise InvalidInput(
                "a SyncMemory method was called from its own event loop thread, where it "
                "would wait for itself: await the MemoryStack (.stack) there instead"
            )
        with self._lock:
            if self._closed:
                raise Closed(
                    "this SyncMemory is closed: every call is refused; build a new one "
                    "(SyncMemory.build) to go on"
                )

            async def run() -> R:
                return await call(self._stack)

            future = self._submit(run())
            self._running.add(future)
        future.add_done_callback(self._running.discard)
        return future.result()

    @property
    def stack(self) -> MemoryStack:
        """The async ``MemoryStack`` underneath; only await it on this object's loop."""
        return self._stack

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The private event loop every call runs on."""
        return self._loop

    def close(self) -> None:
        """Wait for the calls under way, drain queued writes, close the stack, stop the
        loop thread. Final; closing again does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            running = list(self._running)
        futures.wait(running)
        try:
            self._submit(self._stack.close()).result()
        finally:
            self._stop()

    def _stop(self) -> None:
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> SyncMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sync{self._stack!r}"

    # -- MemoryInterface ------------------------------------------------------------------
    store_message = _blocking(MemoryStack.store_message)
    store_messages = _blocking(MemoryStack.store_messages)
    retrieve_messages = _blocking(MemoryStack.retrieve_messages)
    search_messages = _blocking(MemoryStack.search_messages)
    clear_history = _blocking(MemoryStack.clear_history)
    store_memory = _blocking(MemoryStack.store_memory)
    retrieve_memories = _blocking(MemoryStack.retrieve_memories)
    delete_memory = _blocking(MemoryStack.delete_memory)
    create_session = _blocking(MemoryStack.create_session)
    get_session = _blocking(MemoryStack.get_session)
    end_session = _blocking(MemoryStack.end_session)
    get_context = _blocking(MemoryStack.get_context)
    get_statistics = _blocking(MemoryStack.get_statistics)
    # -- the façade's other doors ---------------------------------------------------------
    get_memory = _blocking(MemoryStack.get_memory)
    retrieve_context = _blocking(MemoryStack.retrieve_context)
    search_memories = _blocking(MemoryStack.search_memories)
    clear_conversation = _blocking(MemoryStack.clear_conversation)
    forget_user = _blocking(MemoryStack.forget_user)
    search = _blocking(MemoryStack.search)
    scan = _blocking(MemoryStack.scan)
    flush = _blocking(MemoryStack.flush)
    health = _blocking(MemoryStack.health)
    search_phrase = _blocking(MemoryStack.search_phrase)
    messages_between = _blocking(MemoryStack.messages_between)
    memories_between = _blocking(MemoryStack.memories_between)
    query_memories = _blocking(MemoryStack.query_memories)
    list_sessions = _blocking(MemoryStack.list_sessions)
    list_conversations = _blocking(MemoryStack.list_conversations)
    page_messages = _blocking(MemoryStack.page_messages)
    fork_conversation = _blocking(MemoryStack.fork_conversation)
    branch_of = _blocking(MemoryStack.branch_of)
    restore = _blocking(MemoryStack.restore)
    watermark = _blocking(MemoryStack.watermark)
    conversation_session = _blocking(MemoryStack.conversation_session)
    drop = _blocking(MemoryStack.drop)
    tombstones = _blocking(MemoryStack.tombstones)
    erase = _blocking(MemoryStack.erase)
    scan_payloads = _blocking(MemoryStack.scan_payloads)
    encrypted = _blocking(MemoryStack.encrypted)
    seal = _blocking(MemoryStack.seal)
    unseal = _blocking(MemoryStack.unseal)
    # -- privacy (``stack.audit``) ----------------------------------------------------------
    audit_trail = _blocking(MemoryStack.audit_trail)
    verify_audit = _blocking(MemoryStack.verify_audit)
    record_event = _blocking(MemoryStack.record_event)

    def for_user(self, user_id: str, *, actor: str | None = None) -> SyncScoped:
        """The blocking twin of ``MemoryStack.for_user``: a handle acting for one user."""
        return SyncScoped(self, self._stack.for_user(user_id, actor=actor))

    def admin(self, hook: AccessHook, *, actor: str) -> SyncAdmin:
        """The blocking twin of ``MemoryStack.admin``: operations across users through the
        app's access hook (a coroutine hook runs on the loop thread)."""
        return SyncAdmin(self, self._stack.admin(hook, actor=actor))


class SyncScoped:
    """``ScopedMemory``'s API, blocking, on its ``SyncMemory``'s loop thread."""

    def __init__(self, sync: SyncMemory, handle: ScopedMemory) -> None:
        self._sync = sync
        self.handle = handle
        self.user_id = handle.user_id

    def __repr__(self) -> str:
        return f"Sync{self.handle!r}"

    def _run(self, call: Callable[[ScopedMemory], Awaitable[R]]) -> R:
        return self._sync._run(lambda _stack: call(self.handle))

    store_message = _blocking(ScopedMemory.store_message)
    store_messages = _blocking(ScopedMemory.store_messages)
    retrieve_messages = _blocking(ScopedMemory.retrieve_messages)
    search_messages = _blocking(ScopedMemory.search_messages)
    clear_history = _blocking(ScopedMemory.clear_history)
    store_memory = _blocking(ScopedMemory.store_memory)
    retrieve_memories = _blocking(ScopedMemory.retrieve_memories)
    delete_memory = _blocking(ScopedMemory.delete_memory)
    create_session = _blocking(ScopedMemory.create_session)
    get_session = _blocking(ScopedMemory.get_session)
    end_session = _blocking(ScopedMemory.end_session)
    get_context = _blocking(ScopedMemory.get_context)
    get_statistics = _blocking(ScopedMemory.get_statistics)
    get_memory = _blocking(ScopedMemory.get_memory)
    retrieve_context = _blocking(ScopedMemory.retrieve_context)
    search_memories = _blocking(ScopedMemory.search_memories)
    clear_conversation = _blocking(ScopedMemory.clear_conversation)
    forget_user = _blocking(ScopedMemory.forget_user)
    search = _blocking(ScopedMemory.search)
    scan = _blocking(ScopedMemory.scan)
    search_phrase = _blocking(ScopedMemory.search_phrase)
    messages_between = _blocking(ScopedMemory.messages_between)
    memories_between = _blocking(ScopedMemory.memories_between)
    list_sessions = _blocking(ScopedMemory.list_sessions)
    list_conversations = _blocking(ScopedMemory.list_conversations)
    page_messages = _blocking(ScopedMemory.page_messages)
    branch_of = _blocking(ScopedMemory.branch_of)
    audit_trail = _blocking(ScopedMemory.audit_trail)
    flush = _blocking(ScopedMemory.flush)


class SyncAdmin:
    """``AdminMemory``'s API, blocking, on its ``SyncMemory``'s loop thread."""

    def __init__(self, sync: SyncMemory, handle: AdminMemory) -> None:
        self._sync = sync
        self.handle = handle

    def __repr__(self) -> str:
        return f"Sync{self.handle!r}"

    def _run(self, call: Callable[[AdminMemory], Awaitable[R]]) -> R:
        return self._sync._run(lambda _stack: call(self.handle))

    def user(self, user_id: str) -> SyncScoped:
        """A blocking handle on ``user_id``'s data, once the hook allows it."""
        return SyncScoped(self._sync, self._run(lambda admin: admin.user(user_id)))

    forget_user = _blocking(AdminMemory.forget_user)
    scan = _blocking(AdminMemory.scan)
    audit_trail = _blocking(AdminMemory.audit_trail)
    verify_audit = _blocking(AdminMemory.verify_audit)
    health = _blocking(AdminMemory.health)


SYNC_METHODS: tuple[str, ...] = tuple(
    name for name, value in vars(SyncMemory).items() if isinstance(value, _Blocking)
)
"""Every blocking method (plus ``close``); a test checks none of the façade's is missing."""

SCOPED_SYNC_METHODS: tuple[str, ...] = tuple(
    name for name, value in vars(SyncScoped).items() if isinstance(value, _Blocking)
)
"""Every blocking method of a scoped handle; a test checks none of ``ScopedMemory``'s is
missing."""
