;; Gives each record a verdict by its first byte, written by hand against the binary ABI of
;; docs/transforms.md: `f` ProcessingFailed (its bytes are the error message), `d` Dropped,
;; anything else Ok, unchanged. The console's browser test (tests/clients/test_console.py)
;; uses it; memory layout as upper.wat's.
(module
  (memory (export "memory") 1)
  (global $out (mut i32) (i32.const 0))

  (func (export "hydrant_abi_version") (result i32) (i32.const 1))

  ;; Reserve room for the request and the response; 0 if memory cannot grow.
  (func (export "hydrant_alloc") (param $len i32) (result i32)
    (local $need i32)
    (global.set $out (i32.and (i32.add (i32.add (i32.const 1024) (local.get $len)) (i32.const 7))
                              (i32.const -8)))
    ;; bytes needed: out + len + 16, in 64 KiB pages, rounded up
    (local.set $need (i32.shr_u (i32.add (i32.add (global.get $out) (local.get $len))
                                         (i32.const 65551)) ;; 16 + 65535
                                (i32.const 16)))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then (return (i32.const 0))))))
    (i32.const 1024))

  (func (export "hydrant_transform") (param $ptr i32) (param $len i32) (result i64)
    (local $in i32) (local $o i32) (local $count i32) (local $i i32)
    (local $dlen i32) (local $j i32) (local $b i32) (local $k i32) (local $r i32)
    (local.set $count (i32.load (local.get $ptr)))
    (local.set $in (i32.add (local.get $ptr) (i32.const 4)))
    ;; skip invocation id, delivery stream arn, region
    (local.set $k (i32.const 0))
    (block $done_ctx
      (loop $ctx
        (br_if $done_ctx (i32.eq (local.get $k) (i32.const 3)))
        (local.set $in (i32.add (local.get $in) (i32.add (i32.const 4) (i32.load (local.get $in)))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $ctx)))
    (local.set $o (global.get $out))
    (i32.store (local.get $o) (local.get $count))
    (local.set $o (i32.add (local.get $o) (i32.const 4)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $records
        (br_if $done (i32.eq (local.get $i) (local.get $count)))
        ;; skip record id and arrival timestamp
        (local.set $in (i32.add (local.get $in) (i32.add (i32.const 12) (i32.load (local.get $in)))))
        (local.set $dlen (i32.load (local.get $in)))
        (local.set $in (i32.add (local.get $in) (i32.const 4)))
        ;; index, result Ok, data length
        (i32.store (local.get $o) (local.get $i))
        ;; the verdict: first byte 'f' ProcessingFailed (the record is the message), 'd' Dropped
        (local.set $r (i32.const 0))
        (if (i32.gt_u (local.get $dlen) (i32.const 0))
          (then
            (local.set $b (i32.load8_u (local.get $in)))
            (if (i32.eq (local.get $b) (i32.const 102)) (then (local.set $r (i32.const 2))))
            (if (i32.eq (local.get $b) (i32.const 100)) (then (local.set $r (i32.const 1))))))
        (i32.store8 offset=4 (local.get $o) (local.get $r))
        (i32.store offset=5 (local.get $o) (local.get $dlen))
        (local.set $o (i32.add (local.get $o) (i32.const 9)))
        (local.set $j (i32.const 0))
        (block $copied
          (loop $copy
            (br_if $copied (i32.eq (local.get $j) (local.get $dlen)))
            (local.set $b (i32.load8_u (i32.add (local.get $in) (local.get $j))))
            (i32.store8 (i32.add (local.get $o) (local.get $j)) (local.get $b))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $copy)))
        (local.set $in (i32.add (local.get $in) (local.get $dlen)))
        (local.set $o (i32.add (local.get $o) (local.get $dlen)))
        ;; no partition keys
        (i32.store (local.get $o) (i32.const 0))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $records)))
    (i64.or (i64.shl (i64.extend_i32_u (global.get $out)) (i64.const 32))
            (i64.extend_i32_u (i32.sub (local.get $o) (global.get $out))))))
