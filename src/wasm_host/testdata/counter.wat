;; Test fixture for instance reuse: a global counts invocations of this instance, and every
;; record comes back Ok with the count as 4 little-endian bytes. A record whose data starts
;; with `!` makes the invocation trap (`unreachable`).
(module
  (memory (export "memory") 2 16)
  (global $calls (mut i32) (i32.const 0))
  (func (export "hydrant_alloc") (param $len i32) (result i32)
    (if (i32.gt_u (local.get $len) (i32.const 60000)) (then (return (i32.const 0))))
    (i32.const 64))
  (func (export "hydrant_transform") (param $ptr i32) (param $len i32) (result i64)
    (local $in i32) (local $k i32) (local $count i32) (local $i i32) (local $o i32) (local $dlen i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (local.set $count (i32.load (local.get $ptr)))
    (local.set $in (i32.add (local.get $ptr) (i32.const 4)))
    (block $done
      (loop $skip
        (br_if $done (i32.eq (local.get $k) (i32.const 3)))
        (local.set $in (i32.add (local.get $in) (i32.add (i32.const 4) (i32.load (local.get $in)))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $skip)))
    (local.set $o (i32.const 65536))
    (i32.store (local.get $o) (local.get $count))
    (local.set $o (i32.add (local.get $o) (i32.const 4)))
    (block $end
      (loop $records
        (br_if $end (i32.eq (local.get $i) (local.get $count)))
        (local.set $in (i32.add (local.get $in) (i32.add (i32.const 12) (i32.load (local.get $in)))))
        (local.set $dlen (i32.load (local.get $in)))
        (if (i32.and (i32.ne (local.get $dlen) (i32.const 0))
                     (i32.eq (i32.load8_u offset=4 (local.get $in)) (i32.const 33)))
          (then unreachable))
        (local.set $in (i32.add (local.get $in) (i32.add (i32.const 4) (local.get $dlen))))
        (i32.store (local.get $o) (local.get $i))
        (i32.store8 offset=4 (local.get $o) (i32.const 0))
        (i32.store offset=5 (local.get $o) (i32.const 4))
        (i32.store offset=9 (local.get $o) (global.get $calls))
        (i32.store offset=13 (local.get $o) (i32.const 0))
        (local.set $o (i32.add (local.get $o) (i32.const 17)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $records)))
    (i64.or (i64.const 0x0001000000000000)
            (i64.extend_i32_u (i32.sub (local.get $o) (i32.const 65536))))))
