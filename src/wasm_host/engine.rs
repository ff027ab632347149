//! The wasmtime engine, the compiled-module cache, and the per-worker [`Transform`] that
//! invokes a module on batches of records.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use wasmtime::{
    Config, Engine, ExternType, InstancePre, Linker, Memory, Module, OptLevel, Store, Trap,
    TypedFunc, ValType, WasmBacktrace,
};

use super::abi::{self, RequestContext};
use super::error::{EngineError, InvocationError, LoadError};
use super::outcome::{InputRecord, RecordOutcome};
use super::sandbox::HostState;

/// Default CPU budget of one invocation, in wasmtime fuel units (about one per executed
/// WebAssembly instruction). Ten billion lasts about 1 s of typical guest code and 10 s of a
/// tight loop on the reference machine: twenty times what json-filter-redact needs for a
/// 3 MB batch of 200-byte JSON records (150 M fuel per MB), and short enough that a looping
/// guest does not stall its delivery worker for long. Lambda's 5-minute timeout is the
/// ceiling this stands in for.
pub const DEFAULT_FUEL: u64 = 10_000_000_000;
/// Default cap on a guest's linear memory.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 * 1024 * 1024;
/// Lambda's synchronous-invocation payload limit ("6 MB"), applied to the response buffer.
pub const MAX_RESPONSE_BYTES: u64 = 6 * 1024 * 1024;
/// Fuel for instantiation (data segments, `_initialize`).
const INSTANTIATION_FUEL: u64 = 1_000_000_000;

/// The sandbox limits of one transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxLimits {
    /// CPU budget per invocation, in fuel units. See [`DEFAULT_FUEL`].
    pub fuel: u64,
    /// Cap on the guest's linear memory, in bytes.
    pub memory_bytes: u64,
    /// Largest accepted response buffer, in bytes.
    pub max_response_bytes: u64,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            fuel: DEFAULT_FUEL,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            max_response_bytes: MAX_RESPONSE_BYTES,
        }
    }
}

/// Which entry point a module exports (binary wins when it has both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiKind {
    /// `hydrant_transform`: the compact binary encoding.
    Binary,
    /// `hydrant_transform_json`: Firehose's JSON event and response.
    Json,
}

impl AbiKind {
    fn export(self) -> &'static str {
        match self {
            AbiKind::Binary => "hydrant_transform",
            AbiKind::Json => "hydrant_transform_json",
        }
    }
}

struct EngineInner {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Mutex<HashMap<PathBuf, CacheEntry>>,
}

struct CacheEntry {
    stamp: FileStamp,
    module: TransformModule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

/// One wasmtime engine for the whole process, with a cache of compiled modules.
///
/// Fuel metering (not epoch interruption) bounds each invocation's CPU: it needs no timer
/// thread, it is deterministic (a budget that suffices once always suffices, and a test of
/// the limit is exact), and it is per store, so every delivery worker has its own budget.
/// Epoch interruption would be cheaper per instruction but needs a ticker thread and
/// bounds wall time, which a busy machine makes flaky.
///
/// Cheap to clone; share one per process.
#[derive(Clone)]
pub struct TransformEngine {
    inner: Arc<EngineInner>,
}

impl TransformEngine {
    /// Creates the engine (Cranelift, fuel metering on) and a linker with WASI preview 1.
    pub fn new() -> Result<Self, EngineError> {
        let mut config = Config::new();
        config.consume_fuel(true);
        config.cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&config).map_err(|e| EngineError::Engine(e.into()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut HostState| &mut s.wasi)
            .map_err(|e| EngineError::Wasi(e.into()))?;
        Ok(TransformEngine {
            inner: Arc::new(EngineInner { engine, linker, cache: Mutex::new(HashMap::new()) }),
        })
    }

    /// Loads the module at `path`, compiling it the first time and whenever the file's size
    /// or modification time changed; otherwise returns the cached module. Accepts `.wasm`
    /// binaries and `.wat` text. Either way the module is instantiated once under `limits`
    /// (see [`TransformEngine::compile`]), so one that cannot start within them is refused here.
    pub fn load(&self, path: &Path, limits: &SandboxLimits) -> Result<TransformModule, LoadError> {
        let io = |source| LoadError::Io { path: path.to_path_buf(), source };
        let canonical = path.canonicalize().map_err(io)?;
        let meta = std::fs::metadata(&canonical).map_err(io)?;
        let stamp = FileStamp { len: meta.len(), modified: meta.modified().ok() };
        let cached =
            self.cache().get(&canonical).filter(|e| e.stamp == stamp).map(|e| e.module.clone());
        if let Some(module) = cached {
            check_instance(&self.inner.engine, &module.inner.pre, limits)
                .map_err(|e| e.for_module(&canonical))?;
            return Ok(module);
        }
        let bytes = std::fs::read(&canonical).map_err(io)?;
        let module = self.compile(&canonical, &bytes, limits)?;
        tracing::info!(path = %canonical.display(), abi = ?module.abi(), "compiled transform module");
        self.cache().insert(canonical, CacheEntry { stamp, module: module.clone() });
        Ok(module)
    }

    /// Compiles a module from bytes (`.wasm` or `.wat` text) without caching it, checks its
    /// exports and instantiates it once in a throwaway store with the sandbox of `limits`
    /// (memory cap and fuel, as every invocation has), which also checks
    /// `hydrant_abi_version`. `name` is used in error messages.
    pub fn compile(
        &self,
        name: &Path,
        bytes: &[u8],
        limits: &SandboxLimits,
    ) -> Result<TransformModule, LoadError> {
        let module = Module::new(&self.inner.engine, bytes).map_err(|e| LoadError::Compile {
            path: name.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        let abi_error = |message: String| LoadError::Abi { path: name.to_path_buf(), message };
        let abi = check_exports(&module).map_err(abi_error)?;
        let pre = self.inner.linker.instantiate_pre(&module).map_err(|e| {
            abi_error(format!("{e:#} (only wasi_snapshot_preview1 imports are provided)"))
        })?;
        check_instance(&self.inner.engine, &pre, limits).map_err(|e| e.for_module(name))?;
        Ok(TransformModule {
            inner: Arc::new(ModuleInner {
                name: name.to_path_buf(),
                engine: self.clone(),
                pre,
                abi,
            }),
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, CacheEntry>> {
        self.inner.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn is(ty: &[ValType], want: &[fn(&ValType) -> bool]) -> bool {
    ty.len() == want.len() && ty.iter().zip(want).all(|(t, f)| f(t))
}

fn check_func(
    module: &Module,
    name: &str,
    params: &[fn(&ValType) -> bool],
    results: &[fn(&ValType) -> bool],
    sig: &str,
) -> Result<bool, String> {
    match module.get_export(name) {
        None => Ok(false),
        Some(ExternType::Func(f)) => {
            let p: Vec<ValType> = f.params().collect();
            let r: Vec<ValType> = f.results().collect();
            if is(&p, params) && is(&r, results) {
                Ok(true)
            } else {
                Err(format!("export {name} must have type {sig}, found {f}"))
            }
        }
        Some(other) => Err(format!("export {name} must be a function, found {other:?}")),
    }
}

fn check_exports(module: &Module) -> Result<AbiKind, String> {
    match module.get_export("memory") {
        Some(ExternType::Memory(m)) if !m.is_64() => {}
        Some(ExternType::Memory(_)) => return Err("memory must be a 32-bit memory".into()),
        _ => return Err("missing export `memory`".into()),
    }
    let i32_ = ValType::is_i32 as fn(&ValType) -> bool;
    let i64_ = ValType::is_i64 as fn(&ValType) -> bool;
    if !check_func(module, "hydrant_alloc", &[i32_], &[i32_], "(i32) -> i32")? {
        return Err("missing export `hydrant_alloc`".into());
    }
    check_func(module, "hydrant_abi_version", &[], &[i32_], "() -> i32")?;
    check_func(module, "_initialize", &[], &[], "() -> ()")?;
    let sig = "(i32, i32) -> i64";
    if check_func(module, "hydrant_transform", &[i32_, i32_], &[i64_], sig)? {
        Ok(AbiKind::Binary)
    } else if check_func(module, "hydrant_transform_json", &[i32_, i32_], &[i64_], sig)? {
        Ok(AbiKind::Json)
    } else {
        Err("missing export `hydrant_transform` (or `hydrant_transform_json`)".into())
    }
}

/// A store for one instance: WASI without capabilities, the memory cap of `limits` enforced
/// by the `ResourceLimiter`, and fuel for instantiation. Every instance is made in one, the
/// throwaway one of [`check_instance`] too, so none can allocate past the cap.
fn new_store(engine: &Engine, limits: &SandboxLimits) -> wasmtime::Result<Store<HostState>> {
    let memory_limit = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX);
    let mut store = Store::new(engine, HostState::new(memory_limit));
    store.limiter(|s| &mut s.limiter);
    store.set_fuel(INSTANTIATION_FUEL)?;
    Ok(store)
}

/// Why [`check_instance`] refused a module (the module's name is added by the caller).
enum CheckError {
    Memory { limit_bytes: u64 },
    Abi(String),
}

impl CheckError {
    fn for_module(self, name: &Path) -> LoadError {
        match self {
            CheckError::Memory { limit_bytes } => {
                LoadError::MemoryLimit { path: name.to_path_buf(), limit_bytes }
            }
            CheckError::Abi(message) => LoadError::Abi { path: name.to_path_buf(), message },
        }
    }
}

/// Instantiates the module once in a throwaway store with `limits`' sandbox: it must start
/// within the memory cap and fuel, and `hydrant_abi_version`, when exported, must answer
/// [`abi::ABI_VERSION`].
fn check_instance(
    engine: &Engine,
    pre: &InstancePre<HostState>,
    limits: &SandboxLimits,
) -> Result<(), CheckError> {
    let mut store = new_store(engine, limits).map_err(|e| CheckError::Abi(format!("{e:#}")))?;
    let instance = match pre.instantiate(&mut store) {
        Ok(instance) => instance,
        Err(_) if store.data().limiter.exceeded => {
            return Err(CheckError::Memory { limit_bytes: limits.memory_bytes })
        }
        Err(e) => return Err(CheckError::Abi(format!("cannot instantiate: {e:#}"))),
    };
    if pre.module().get_export("hydrant_abi_version").is_none() {
        return Ok(());
    }
    let version = instance
        .get_typed_func::<(), i32>(&mut store, "hydrant_abi_version")
        .and_then(|f| f.call(&mut store, ()))
        .map_err(|e| CheckError::Abi(format!("hydrant_abi_version failed: {e:#}")))?;
    if version != abi::ABI_VERSION {
        return Err(CheckError::Abi(format!(
            "module speaks ABI version {version}, this Hydrant speaks {}",
            abi::ABI_VERSION
        )));
    }
    Ok(())
}

struct ModuleInner {
    name: PathBuf,
    engine: TransformEngine,
    pre: InstancePre<HostState>,
    abi: AbiKind,
}

/// A compiled, ABI-checked module. Cheap to clone.
#[derive(Clone)]
pub struct TransformModule {
    inner: Arc<ModuleInner>,
}

impl std::fmt::Debug for TransformModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformModule")
            .field("name", &self.inner.name)
            .field("abi", &self.inner.abi)
            .finish()
    }
}

impl TransformModule {
    /// The path (or name) the module was loaded from.
    pub fn name(&self) -> &Path {
        &self.inner.name
    }

    /// Whether both handles share one compilation.
    #[cfg(test)]
    pub(crate) fn same_module(&self, other: &TransformModule) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The entry point Hydrant calls.
    pub fn abi(&self) -> AbiKind {
        self.inner.abi
    }
}

/// The delivery stream a transform works for; it fills the Firehose event's context fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformContext {
    /// `deliveryStreamArn` of the event.
    pub delivery_stream_arn: String,
    /// `region` of the event.
    pub region: String,
}

/// A live instance with its store.
struct Live {
    store: Store<HostState>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    transform: TypedFunc<(i32, i32), i64>,
}

/// A module bound to one delivery worker. The instance is created on first use and reused
/// across invocations; after an invocation that trapped, timed out or hit the memory cap it
/// is thrown away and the next invocation starts from a fresh instance.
///
/// [`Transform::invoke`] runs the guest on the calling thread and blocks it for as long as
/// the guest runs: from async code call it inside `tokio::task::spawn_blocking` (never
/// directly on a runtime worker thread: WASI calls such as a guest's write to stderr enter
/// the current Tokio runtime with `block_on`, which panics there).
pub struct Transform {
    module: TransformModule,
    limits: SandboxLimits,
    context: TransformContext,
    live: Option<Live>,
    json_request: Vec<u8>,
    instantiations: u64,
    last_fuel_used: u64,
}

impl Transform {
    /// Binds `module` to a worker with these limits. Instantiation is deferred to the first
    /// invocation.
    pub fn new(module: &TransformModule, context: TransformContext, limits: SandboxLimits) -> Self {
        Transform {
            module: module.clone(),
            limits,
            context,
            live: None,
            json_request: Vec::new(),
            instantiations: 0,
            last_fuel_used: 0,
        }
    }

    /// How many instances have been created so far (1 + the number of restarts).
    pub fn instantiations(&self) -> u64 {
        self.instantiations
    }

    /// Fuel the last invocation used (for metrics and for sizing the budget).
    pub fn last_fuel_used(&self) -> u64 {
        self.last_fuel_used
    }

    /// Runs the transform over one batch. On success there is exactly one outcome per input
    /// record, in input order, with Firehose's per-record rules applied. An error fails the
    /// whole batch; see [`InvocationError::is_retryable`] and [`InvocationError::code`].
    pub fn invoke(
        &mut self,
        records: &[InputRecord],
    ) -> Result<Vec<RecordOutcome>, InvocationError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let result = self.invoke_inner(records);
        if let Err(e) = &result {
            if e.poisons_instance() && self.live.take().is_some() {
                tracing::debug!(module = %self.module.name().display(), error = %e, "dropping transform instance");
            }
        }
        result
    }

    fn invoke_inner(
        &mut self,
        records: &[InputRecord],
    ) -> Result<Vec<RecordOutcome>, InvocationError> {
        if self.live.is_none() {
            self.live = Some(self.instantiate()?);
        }
        let invocation_id = uuid::Uuid::new_v4().to_string();
        let ctx = RequestContext {
            invocation_id: &invocation_id,
            delivery_stream_arn: &self.context.delivery_stream_arn,
            region: &self.context.region,
        };
        let abi_kind = self.module.abi();
        let request_len = match abi_kind {
            AbiKind::Binary => abi::binary_request_len(&ctx, records),
            AbiKind::Json => {
                abi::encode_json_request(&mut self.json_request, &ctx, records);
                self.json_request.len()
            }
        };
        let request_len_i32 = i32::try_from(request_len).map_err(|_| InvocationError::Abi {
            message: format!("request of {request_len} bytes does not fit a 32-bit guest"),
        })?;
        let fuel = self.limits.fuel;
        let live = self.live.as_mut().expect("instantiated above");
        live.store.data_mut().limiter.exceeded = false;
        live.store.data().stderr.clear();
        live.store.set_fuel(fuel).map_err(|e| InvocationError::Abi { message: e.to_string() })?;

        let ptr = live
            .alloc
            .call(&mut live.store, request_len_i32)
            .map_err(|e| classify(e, live, fuel))?;
        let ptr = ptr as u32 as usize;
        {
            let memory = live.memory.data_mut(&mut live.store);
            let Some(dest) = memory.get_mut(ptr..ptr + request_len).filter(|_| ptr != 0) else {
                return Err(if live.store.data().limiter.exceeded {
                    memory_error(live)
                } else {
                    InvocationError::Abi {
                        message: format!(
                            "hydrant_alloc({request_len}) returned bad pointer {ptr:#x}"
                        ),
                    }
                });
            };
            match abi_kind {
                AbiKind::Binary => abi::encode_binary_request(dest, &ctx, records),
                AbiKind::Json => dest.copy_from_slice(&self.json_request),
            }
        }
        let packed = live
            .transform
            .call(&mut live.store, (ptr as i32, request_len_i32))
            .map_err(|e| classify(e, live, fuel))?;
        self.last_fuel_used = fuel - live.store.get_fuel().unwrap_or(0);
        let (out_ptr, out_len) =
            ((packed as u64 >> 32) as usize, (packed as u64 & 0xFFFF_FFFF) as usize);
        if out_len as u64 > self.limits.max_response_bytes {
            return Err(InvocationError::ResponseTooLarge {
                size: out_len as u64,
                limit: self.limits.max_response_bytes,
            });
        }
        let Some(response) = live.memory.data(&live.store).get(out_ptr..out_ptr + out_len) else {
            return Err(InvocationError::Abi {
                message: format!("response {out_ptr:#x}+{out_len} is outside guest memory"),
            });
        };
        match abi_kind {
            AbiKind::Binary => {
                abi::decode_binary_response(Bytes::copy_from_slice(response), records)
            }
            AbiKind::Json => abi::decode_json_response(response, records),
        }
    }

    fn instantiate(&mut self) -> Result<Live, InvocationError> {
        let inner = &self.module.inner;
        let engine = &inner.engine.inner.engine;
        let instantiation_error = |message: String| InvocationError::Instantiation { message };
        let mut store =
            new_store(engine, &self.limits).map_err(|e| instantiation_error(e.to_string()))?;
        self.instantiations += 1;
        let instance = match inner.pre.instantiate(&mut store) {
            Ok(i) => i,
            Err(_) if store.data().limiter.exceeded => {
                return Err(InvocationError::MemoryLimitExceeded {
                    limit_bytes: self.limits.memory_bytes,
                })
            }
            Err(e) => return Err(instantiation_error(format!("{e:#}"))),
        };
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ()).map_err(|e| {
                instantiation_error(format!(
                    "_initialize failed: {e:#} {}",
                    store.data().stderr.text()
                ))
            })?;
        }
        let abi = |e: wasmtime::Error| instantiation_error(format!("{e:#}"));
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| instantiation_error("no memory export".into()))?;
        let alloc = instance.get_typed_func(&mut store, "hydrant_alloc").map_err(abi)?;
        let transform = instance.get_typed_func(&mut store, inner.abi.export()).map_err(abi)?;
        tracing::debug!(module = %inner.name.display(), "instantiated transform");
        Ok(Live { store, memory, alloc, transform })
    }
}

fn memory_error(live: &Live) -> InvocationError {
    InvocationError::MemoryLimitExceeded {
        limit_bytes: live.store.data().limiter.max_memory() as u64,
    }
}

/// Turns an error from a guest call into the invocation error it means.
fn classify(e: wasmtime::Error, live: &Live, fuel: u64) -> InvocationError {
    if matches!(e.downcast_ref::<Trap>(), Some(Trap::OutOfFuel)) {
        return InvocationError::Timeout { fuel };
    }
    if live.store.data().limiter.exceeded {
        return memory_error(live);
    }
    // One line: what happened, what the guest said, where.
    let mut message = match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        Some(exit) => format!("guest called proc_exit({})", exit.0),
        None => e.root_cause().to_string(),
    };
    let stderr = live.store.data().stderr.text();
    if !stderr.is_empty() {
        message.push_str("; guest stderr: ");
        message.push_str(&stderr);
    }
    if let Some(trace) = e.downcast_ref::<WasmBacktrace>() {
        let trace = trace.to_string();
        message.push_str("; ");
        message.push_str(&trace.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    InvocationError::Trap { message }
}
