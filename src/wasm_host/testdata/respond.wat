;; Test fixture: returns the first record's data, verbatim, as the whole binary response,
;; so a test can hand-craft any response (missing, duplicated or unknown entries,
;; truncation...). A first record with empty data makes it return an out-of-bounds buffer.
(module
  (memory (export "memory") 2 16)
  (func (export "hydrant_alloc") (param $len i32) (result i32)
    (if (i32.gt_u (local.get $len) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 64))
  (func (export "hydrant_transform") (param $ptr i32) (param $len i32) (result i64)
    (local $in i32) (local $k i32) (local $dlen i32)
    (local.set $in (i32.add (local.get $ptr) (i32.const 4)))
    (block $done
      (loop $skip
        (br_if $done (i32.eq (local.get $k) (i32.const 3)))
        (local.set $in (i32.add (local.get $in) (i32.add (i32.const 4) (i32.load (local.get $in)))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $skip)))
    (local.set $in (i32.add (local.get $in) (i32.add (i32.const 12) (i32.load (local.get $in)))))
    (local.set $dlen (i32.load (local.get $in)))
    (if (i32.eqz (local.get $dlen))
      (then (return (i64.const 0xFFFFFFF000000040))))
    (i64.or (i64.shl (i64.extend_i32_u (i32.add (local.get $in) (i32.const 4))) (i64.const 32))
            (i64.extend_i32_u (local.get $dlen)))))
