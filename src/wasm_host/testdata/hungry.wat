;; Test fixture: grows memory 1 MiB at a time until refused, then traps the way a Rust
;; guest aborts on allocation failure.
(module
  (memory (export "memory") 1)
  (func (export "hydrant_alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "hydrant_transform") (param $ptr i32) (param $len i32) (result i64)
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))
