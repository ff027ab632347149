;; Test fixture: writes a message to stderr through WASI, then traps, like a Rust panic.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "panicked at src/lib.rs:7: boom\n")
  (func (export "hydrant_alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "hydrant_transform") (param $ptr i32) (param $len i32) (result i64)
    ;; iovec at 0: { buf = 16, len = 31 }
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 31))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    unreachable))
