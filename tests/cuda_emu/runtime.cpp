// The CUDA emulator's execution model and runtime API (see include/cuda_emu/device.h for why).
//
// A launch runs its blocks one after another on the calling thread. A block's threads are fibers
// (a stack each, and a six-register context switch: ucontext's would make two system calls per
// switch for the signal mask) that the block's scheduler resumes in turn, in an order that
// alternates (see run_block); a thread runs until it finishes or waits at a barrier
// (__syncthreads, __syncwarp, a warp shuffle), and a barrier opens when every live thread of the
// block (or warp) has arrived. Threads that wait at different barriers forever are a deadlock on a
// GPU too: the launch then fails with a message instead of hanging.
//
// Device memory is host memory that the emulator tracks: copies and memsets are checked against
// the allocations they touch, pointer arguments of kernels must point into device memory, and new
// allocations are filled with 0xff bytes (NaN in every float type), so that a kernel reading memory
// nobody wrote shows it. Device memory is inaccessible to host code, as on a GPU: it opens (page
// by page, on first touch) only for kernels and the runtime's own copies, so host code that reads a
// CUDA tensor's memory directly stops with a message. Each allocation ends (to 16 bytes) at an inaccessible guard page: a kernel
// touching memory past its buffer stops there with a message naming the kernel, block and thread
// (HONE_CUDA_CACHING=0, which tools/test.sh sets for the emulated suites, gives every tensor its own
// allocation). Streams and events are synchronous.
#include <cuda_runtime.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "activity.h"
#include "cuda_emu/counters.h"
#include "cuda_emu/device.h"

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
thread_local dim3 blockDim;
thread_local dim3 gridDim;

namespace hone::emu {
namespace {

thread_local cudaError_t t_last_error = cudaSuccess;

cudaError_t fail(cudaError_t e) {
  t_last_error = e;
  return e;
}

// ---- device memory ----------------------------------------------------------------------------
struct Allocation {
  size_t bytes;
  char* map;   // the mapping: the pages holding the allocation, then the guard page
  size_t map_bytes;
};
struct Allocations {
  std::mutex mu;
  std::map<uintptr_t, Allocation> live;  // start -> allocation
};
Allocations& allocations() {
  static auto* a = new Allocations();
  return *a;
}

// The allocation holding [p, p + bytes), or false.
bool in_device_memory(const void* p, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  Allocations& al = allocations();
  std::lock_guard<std::mutex> lock(al.mu);
  auto it = al.live.upper_bound(a);
  if (it == al.live.begin()) return false;
  --it;
  const uintptr_t end = it->first + it->second.bytes;
  return a >= it->first && a + bytes <= end && (bytes > 0 || a <= end);
}

size_t page_size() {
  static const size_t page = size_t(sysconf(_SC_PAGESIZE));
  return page;
}

void install_fault_handler();

// Device access scopes (DeviceAccess) of this thread, and the mappings opened during them.
thread_local int t_access_depth = 0;
thread_local std::vector<std::pair<char*, size_t>> t_opened;

cudaError_t device_alloc(void** p, size_t bytes) {
  if (!p) return fail(cudaErrorInvalidValue);
  install_fault_handler();
  const size_t page = page_size();
  const size_t body = (std::max<size_t>(bytes, 1) + 15) / 16 * 16;  // 16-byte aligned start
  const size_t pages = (body + page - 1) / page * page;
  void* map = mmap(nullptr, pages + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) return fail(cudaErrorMemoryAllocation);
  char* base = static_cast<char*>(map);
  if (mprotect(base + pages, page, PROT_NONE) != 0) {
    munmap(map, pages + page);
    return fail(cudaErrorMemoryAllocation);
  }
  char* start = base + pages - body;  // the allocation ends (to 16 bytes) at the guard page
  std::memset(start, 0xff, body);
  mprotect(base, pages, PROT_NONE);  // opened on first touch inside a DeviceAccess scope
  Allocations& al = allocations();
  std::lock_guard<std::mutex> lock(al.mu);
  al.live[reinterpret_cast<uintptr_t>(start)] = {bytes, base, pages + page};
  *p = start;
  return cudaSuccess;
}

cudaError_t device_free(void* p) {
  if (!p) return cudaSuccess;
  Allocation a{};
  Allocations& al = allocations();
  {
    std::lock_guard<std::mutex> lock(al.mu);
    auto it = al.live.find(reinterpret_cast<uintptr_t>(p));
    if (it == al.live.end()) return fail(cudaErrorInvalidValue);
    a = it->second;
    al.live.erase(it);
  }
  for (size_t k = 0; k < t_opened.size(); ++k)
    if (t_opened[k].first == a.map) {
      t_opened.erase(t_opened.begin() + long(k));
      break;
    }
  munmap(a.map, a.map_bytes);
  return cudaSuccess;
}

[[noreturn]] void misuse(const std::string& what) { throw std::runtime_error("CUDA emulator: " + what); }

// host_waits(): the counters, updated by the runtime calls below.
// launches(): the counts by kernel, under their lock.
std::mutex g_launches_mu;
std::map<std::string, uint64_t> g_launches;

std::atomic<uint64_t> g_synchronize{0}, g_device_to_host{0}, g_free{0}, g_host_to_device{0}, g_malloc{0},
    g_malloc_async{0}, g_host_to_device_pinned{0};

// The device's default memory pool (cudaMallocAsync's): its release threshold as set, the
// cudaMemPoolTrimTo calls, and cudaMalloc failures a test asked for (fail_next_mallocs).
std::atomic<uint64_t> g_pool_release_threshold{0}, g_pool_trims{0};
std::atomic<int> g_failing_mallocs{0};
char g_default_pool;  // its handle's address

// Page-locked host allocations (cudaHostAlloc / cudaMallocHost): start -> bytes. A copy from them
// to the device is asynchronous on a GPU; one from pageable memory may wait for the stream.
std::mutex g_pinned_mu;
std::map<uintptr_t, size_t> g_pinned;

bool in_pinned_memory(const void* p, size_t n) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(g_pinned_mu);
  auto it = g_pinned.upper_bound(a);
  if (it == g_pinned.begin()) return false;
  --it;
  return a >= it->first && a + n <= it->first + it->second;
}

cudaError_t copy(void* dst, const void* src, size_t n, cudaMemcpyKind kind, const char* api) {
  if (n == 0) return cudaSuccess;
  const DeviceAccess access;
  const bool dst_dev = in_device_memory(dst, n), src_dev = in_device_memory(src, n);
  const bool want_dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool want_src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind != cudaMemcpyDefault && kind != cudaMemcpyHostToHost) {
    if (want_dst_dev && !dst_dev)
      misuse(std::string(api) + ": the destination of " + std::to_string(n) +
             " bytes is not inside one device allocation");
    if (want_src_dev && !src_dev)
      misuse(std::string(api) + ": the source of " + std::to_string(n) + " bytes is not inside one device allocation");
    if (!want_dst_dev && dst_dev) misuse(std::string(api) + ": a host destination in device memory (wrong kind)");
    if (!want_src_dev && src_dev) misuse(std::string(api) + ": a host source in device memory (wrong kind)");
  }
  if (src_dev && !dst_dev) ++g_device_to_host;
  if (dst_dev && !src_dev) ++(in_pinned_memory(src, n) ? g_host_to_device_pinned : g_host_to_device);
  const uint64_t start = recording_copies() ? activity_clock_ns() : 0;
  std::memmove(dst, src, n);
  if (start) {
    const cudaMemcpyKind k = kind != cudaMemcpyDefault ? kind
                             : src_dev && dst_dev      ? cudaMemcpyDeviceToDevice
                             : src_dev                 ? cudaMemcpyDeviceToHost
                             : dst_dev                 ? cudaMemcpyHostToDevice
                                                       : cudaMemcpyHostToHost;
    record_copy(k, n, start, activity_clock_ns());
  }
  return cudaSuccess;
}

cudaError_t set(void* dst, int value, size_t n, const char* api) {
  if (n == 0) return cudaSuccess;
  const DeviceAccess access;
  if (!in_device_memory(dst, n))
    misuse(std::string(api) + ": " + std::to_string(n) + " bytes are not inside one device allocation");
  const uint64_t start = recording_copies() ? activity_clock_ns() : 0;
  std::memset(dst, value, n);
  if (start) record_memset(value, n, start, activity_clock_ns());
  return cudaSuccess;
}

// ---- fibers ---------------------------------------------------------------------------------------
// switch_stack(save, load): pushes the callee-saved registers (System V x86-64), stores the stack
// pointer in *save, continues on the stack `load` by popping that stack's registers and returning
// to its saved address. A new fiber's stack is laid out so that the first switch to it "returns"
// into fiber_entry.
extern "C" void hone_emu_switch_stack(void** save, void* load);
asm(R"(
  .text
  .globl hone_emu_switch_stack
  .type hone_emu_switch_stack, @function
hone_emu_switch_stack:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size hone_emu_switch_stack, .-hone_emu_switch_stack
)");

enum class State { Ready, AtBlockBarrier, AtWarpBarrier, Done };

struct Fiber {
  void* sp = nullptr;  // its saved stack pointer while suspended
  State state = State::Ready;
  uint3 tid{};
  int linear = 0;
};

constexpr size_t kStackBytes = 256 * 1024;

struct Block {
  std::vector<Fiber> fibers;
  void* scheduler_sp = nullptr;
  Fiber* current = nullptr;
  void (*body)(void*) = nullptr;
  void* body_ctx = nullptr;
  int or_accumulated = 0, or_result = 0;
  std::vector<unsigned char> slots;  // 16 bytes per thread, for warp exchanges
  std::exception_ptr error;
};

thread_local Block* t_block = nullptr;
thread_local const char* t_kernel = "";
thread_local std::vector<char*> t_stacks;
thread_local std::vector<unsigned char> t_dynamic_shared;

[[noreturn]] void fiber_entry() {
  Block* b = t_block;
  Fiber* f = b->current;
  try {
    b->body(b->body_ctx);
  } catch (...) {
    if (!b->error) b->error = std::current_exception();
  }
  f->state = State::Done;
  hone_emu_switch_stack(&f->sp, b->scheduler_sp);
  std::abort();  // a finished fiber is never resumed
}

// A fresh stack whose first switch enters fiber_entry: six zeroed registers, then the return
// address, placed so that fiber_entry starts with the stack alignment of a called function.
void* fresh_stack(char* base) {
  uintptr_t top = (reinterpret_cast<uintptr_t>(base) + kStackBytes) & ~uintptr_t(15);
  top -= 16;  // the return address sits at a multiple of 16: fiber_entry then sees rsp = 8 (mod 16)
  void** sp = reinterpret_cast<void**>(top);
  *sp = reinterpret_cast<void*>(&fiber_entry);
  for (int r = 0; r < 6; ++r) *--sp = nullptr;
  return sp;
}

void suspend(State s) {
  Block* b = t_block;
  if (!b) misuse("a barrier outside a kernel");
  Fiber* f = b->current;
  f->state = s;
  hone_emu_switch_stack(&f->sp, b->scheduler_sp);
}

std::string dim_str(const dim3& d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "(%u, %u, %u)", d.x, d.y, d.z);
  return buf;
}

// "kernel K, block (x, y, z)" for messages.
std::string where() { return std::string("kernel ") + t_kernel + ", block " + dim_str(dim3(blockIdx.x, blockIdx.y, blockIdx.z)); }

// A fault on a guard page: say which kernel, block and thread went past which allocation, then
// abort (the test fails with this line rather than a bare segmentation fault).
struct sigaction g_previous_segv;

void on_fault(int sig, siginfo_t* info, void* ucontext) {
  const uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
  Allocations& al = allocations();
  if (al.mu.try_lock()) {
    for (const auto& [start, a] : al.live) {
      const uintptr_t map = reinterpret_cast<uintptr_t>(a.map);
      const uintptr_t guard = map + a.map_bytes - page_size();
      if (addr >= map && addr < guard) {  // the allocation's own pages
        if (t_access_depth > 0) {  // a kernel or a runtime copy: open the mapping, retry the access
          mprotect(a.map, a.map_bytes - page_size(), PROT_READ | PROT_WRITE);
          t_opened.emplace_back(a.map, a.map_bytes - page_size());
          al.mu.unlock();
          return;
        }
        std::fprintf(stderr,
                     "CUDA emulator: host code touched byte %zd of a %zu-byte device allocation (host code cannot "
                     "read device memory on a GPU: copy it with cudaMemcpy)\n",
                     ssize_t(addr) - ssize_t(start), a.bytes);
        std::fflush(stderr);
        std::abort();
      }
      if (addr < guard || addr >= guard + page_size()) continue;
      if (t_block)
        std::fprintf(stderr,
                     "CUDA emulator: %s, thread (%u, %u, %u) accessed byte %zu of a %zu-byte device allocation "
                     "(past its end)\n",
                     where().c_str(), threadIdx.x, threadIdx.y, threadIdx.z, size_t(addr - start), a.bytes);
      else
        std::fprintf(stderr, "CUDA emulator: host code accessed byte %zu of a %zu-byte device allocation (past its end)\n",
                     size_t(addr - start), a.bytes);
      std::fflush(stderr);
      std::abort();
    }
    al.mu.unlock();
  }
  // Not a guard page: whatever handled SIGSEGV before (or the default, a crash) takes it.
  sigaction(SIGSEGV, &g_previous_segv, nullptr);
  (void)sig;
  (void)ucontext;
}

}  // namespace

DeviceAccess::DeviceAccess() {
  if (t_access_depth++ == 0) t_opened.reserve(4096);  // no allocation inside the fault handler
}
DeviceAccess::~DeviceAccess() {
  if (--t_access_depth > 0) return;
  for (const auto& [map, bytes] : t_opened) mprotect(map, bytes, PROT_NONE);
  t_opened.clear();
}

namespace {

void install_fault_handler() {
  static const bool installed = [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous_segv);
    return true;
  }();
  (void)installed;
}

// Runs one block to completion.
void run_block(Block& b, int threads, const dim3& block) {
  for (int i = int(t_stacks.size()); i < threads; ++i) t_stacks.push_back(static_cast<char*>(std::malloc(kStackBytes)));
  b.fibers.assign(size_t(threads), Fiber{});
  b.slots.assign(size_t(threads) * 16, 0);
  for (int i = 0; i < threads; ++i) {
    Fiber& f = b.fibers[size_t(i)];
    f.linear = i;
    f.tid = uint3{unsigned(i % block.x), unsigned((i / block.x) % block.y), unsigned(i / (block.x * block.y))};
    f.sp = fresh_stack(t_stacks[size_t(i)]);
  }
  if (!t_dynamic_shared.empty()) std::memset(t_dynamic_shared.data(), 0xff, t_dynamic_shared.size());
  const int warps = (threads + 31) / 32;
  // The order in which the ready threads run flips at every barrier, and blocks start in opposite
  // orders: a thread that reads what another writes without a barrier between them then reads it
  // too early in one of the two orders (and unwritten memory is NaN), as some warp schedule on a
  // GPU would.
  bool ascending = (blockIdx.x + blockIdx.y + blockIdx.z) % 2 == 0;
  while (true) {
    for (int k = 0; k < threads; ++k) {
      Fiber& f = b.fibers[size_t(ascending ? k : threads - 1 - k)];
      if (f.state != State::Ready) continue;
      b.current = &f;
      threadIdx = f.tid;
      hone_emu_switch_stack(&b.scheduler_sp, f.sp);
      if (b.error) std::rethrow_exception(b.error);
    }
    ascending = !ascending;
    int live = 0, at_block = 0;
    for (const Fiber& f : b.fibers) {
      live += f.state != State::Done;
      at_block += f.state == State::AtBlockBarrier;
    }
    if (live == 0) return;
    bool released = false;
    if (at_block == live) {
      for (Fiber& f : b.fibers) f.state = State::Ready;
      b.or_result = b.or_accumulated;
      b.or_accumulated = 0;
      released = true;
    } else {
      for (int w = 0; w < warps; ++w) {
        int live_w = 0, at_w = 0, size_w = 0;
        for (int i = 32 * w; i < threads && i < 32 * (w + 1); ++i) {
          ++size_w;
          live_w += b.fibers[size_t(i)].state != State::Done;
          at_w += b.fibers[size_t(i)].state == State::AtWarpBarrier;
        }
        if (live_w == 0 || at_w != live_w) continue;
        if (live_w != size_w)
          misuse(where() + ": warp " + std::to_string(w) +
                 " synchronises (__syncwarp or a shuffle over all lanes) after " + std::to_string(size_w - live_w) +
                 " of its lanes exited");
        for (int i = 32 * w; i < threads && i < 32 * (w + 1); ++i) b.fibers[size_t(i)].state = State::Ready;
        released = true;
      }
    }
    if (!released)
      misuse(where() + " deadlocks: " + std::to_string(at_block) +
             " of its " + std::to_string(live) +
             " live threads wait at __syncthreads and the others at a warp barrier (a barrier in divergent code?)");
  }
}

}  // namespace

void block_barrier() { suspend(State::AtBlockBarrier); }
void warp_barrier() { suspend(State::AtWarpBarrier); }

int block_barrier_or(int pred) {
  t_block->or_accumulated |= pred ? 1 : 0;
  suspend(State::AtBlockBarrier);
  return t_block->or_result;
}

int lane_id() { return t_block->current->linear % 32; }

void warp_exchange(const void* mine, void* out, size_t size, int src_lane) {
  Block* b = t_block;
  if (size > 16) misuse("a warp shuffle of more than 16 bytes");
  const int me = b->current->linear, src = (me / 32) * 32 + src_lane;
  if (src_lane < 0 || src_lane > 31 || src >= int(b->fibers.size()))
    misuse("a warp shuffle from lane " + std::to_string(src_lane) + ", which does not exist");
  std::memcpy(&b->slots[size_t(me) * 16], mine, size);
  warp_barrier();
  std::memcpy(out, &b->slots[size_t(src) * 16], size);
  warp_barrier();
}

unsigned char* dynamic_shared() { return t_dynamic_shared.data(); }

bool is_device_pointer(const void* p) { return p == nullptr || in_device_memory(p, 0); }
MemPoolState mem_pool() { return {g_pool_release_threshold, g_pool_trims}; }
void fail_next_mallocs(int n) { g_failing_mallocs = n; }

HostWaits host_waits() {
  HostWaits w;
  w.synchronize = g_synchronize, w.device_to_host = g_device_to_host, w.free = g_free;
  w.host_to_device = g_host_to_device, w.malloc = g_malloc, w.malloc_async = g_malloc_async;
  w.host_to_device_pinned = g_host_to_device_pinned;
  return w;
}

std::map<std::string, uint64_t> launches() {
  std::lock_guard<std::mutex> lock(g_launches_mu);
  return g_launches;
}

bool is_device_range(const void* p, size_t bytes) { return p != nullptr && in_device_memory(p, bytes); }

void report_host_pointer_argument(const char* kernel, int index) {
  misuse(std::string("kernel ") + kernel + ": argument " + std::to_string(index) + " is a pointer outside device memory");
}

double load_elem(Elem t, const void* base, int64_t i) {
  switch (t) {
    case Elem::F32: return static_cast<const float*>(base)[i];
    case Elem::F64: return static_cast<const double*>(base)[i];
    case Elem::BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[i]);
    case Elem::F16: return __half2float(static_cast<const __half*>(base)[i]);
    case Elem::None: break;
  }
  return NAN;
}

void store_elem(Elem t, void* base, int64_t i, double v) {
  switch (t) {
    case Elem::F32: static_cast<float*>(base)[i] = float(v); break;
    case Elem::F64: static_cast<double*>(base)[i] = v; break;
    case Elem::BF16: static_cast<__nv_bfloat16*>(base)[i] = __float2bfloat16_rn(float(v)); break;
    case Elem::F16: static_cast<__half*>(base)[i] = __float2half_rn(float(v)); break;
    case Elem::None: break;
  }
}

void run_grid(const char* kernel, const LaunchConfig& cfg, void (*body)(void*), void* ctx) {
  const dim3 g = cfg.grid, bl = cfg.block;
  const long long threads = (long long)bl.x * bl.y * bl.z;
  // The limits of a compute capability 9.0 device (a real launch fails with these errors).
  if (threads < 1 || threads > 1024 || bl.x > 1024 || bl.y > 1024 || bl.z > 64) {
    fail(cudaErrorInvalidConfiguration);
    return;
  }
  if (g.x < 1 || g.y < 1 || g.z < 1 || g.x > 2147483647u || g.y > 65535 || g.z > 65535) {
    fail(cudaErrorInvalidConfiguration);
    return;
  }
  if (cfg.shared_bytes > 48 * 1024) {  // above 48 KiB needs cudaFuncSetAttribute, which hone never calls
    fail(cudaErrorInvalidValue);
    return;
  }
  if (cfg.max_threads != 0 && threads > cfg.max_threads) {  // more threads than the kernel was compiled for
    fail(cudaErrorLaunchOutOfResources);
    return;
  }
  if (cfg.max_threads == 0 && threads > kUnboundedMaxThreads)
    misuse(std::string("kernel ") + kernel + " is launched with " + std::to_string(threads) +
           " threads per block but declares no __launch_bounds__ (above " + std::to_string(kUnboundedMaxThreads) +
           " threads its registers must be bounded, or the launch can fail on a GPU)");
  if (t_block) misuse(std::string("kernel ") + kernel + " launched from inside a kernel");
  {
    std::lock_guard<std::mutex> lock(g_launches_mu);
    ++g_launches[kernel];
  }
  t_kernel = kernel;
  t_dynamic_shared.assign(cfg.shared_bytes, 0xff);
  gridDim = g;  // nothing reads these outside a kernel, so nothing is restored afterwards
  blockDim = bl;
  Block b;
  b.body = body;
  b.body_ctx = ctx;
  const DeviceAccess access;
  struct Running {  // t_block is this launch's block while it runs, however the launch ends
    explicit Running(Block* block) { t_block = block; }
    ~Running() { t_block = nullptr; }
  } running(&b);
  const KernelActivity activity(kernel);  // for a CUPTI client (cupti.cpp)
  for (unsigned z = 0; z < g.z; ++z)
    for (unsigned y = 0; y < g.y; ++y)
      for (unsigned x = 0; x < g.x; ++x) {
        blockIdx = uint3{x, y, z};
        run_block(b, int(threads), bl);
      }
}

}  // namespace hone::emu

// ---- the runtime API (declared by cuda_runtime_api.h with C linkage) ------------------------------
using hone::emu::fail;

cudaError_t cudaGetLastError() {
  const cudaError_t e = hone::emu::t_last_error;
  hone::emu::t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return hone::emu::t_last_error; }

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument (CUDA emulator)";
    case cudaErrorMemoryAllocation: return "out of memory (CUDA emulator)";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument (CUDA emulator)";
    case cudaErrorInvalidDevice: return "invalid device ordinal (CUDA emulator)";
    default: return "error (CUDA emulator)";
  }
}
const char* cudaGetErrorName(cudaError_t e) { return cudaGetErrorString(e); }

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "hone CUDA emulator (CPU)");
  prop->totalGlobalMem = size_t(16) << 30;
  prop->sharedMemPerBlock = 48 * 1024;
  prop->regsPerBlock = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 4;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = 4; return cudaSuccess;
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
    default: return fail(cudaErrorInvalidValue);
  }
}

cudaError_t cudaDeviceSynchronize() {
  ++hone::emu::g_synchronize;
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  *free_bytes = size_t(12) << 30;
  *total = size_t(16) << 30;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  ++hone::emu::g_malloc;
  if (hone::emu::g_failing_mallocs > 0) {
    --hone::emu::g_failing_mallocs;
    return fail(cudaErrorMemoryAllocation);
  }
  return hone::emu::device_alloc(p, bytes);
}
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  if (device != 0) return fail(cudaErrorInvalidDevice);
  *pool = reinterpret_cast<cudaMemPool_t>(&hone::emu::g_default_pool);
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (pool != reinterpret_cast<cudaMemPool_t>(&hone::emu::g_default_pool) || attr != cudaMemPoolAttrReleaseThreshold)
    return fail(cudaErrorInvalidValue);
  hone::emu::g_pool_release_threshold = *static_cast<const uint64_t*>(value);
  return cudaSuccess;
}
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (pool != reinterpret_cast<cudaMemPool_t>(&hone::emu::g_default_pool) || attr != cudaMemPoolAttrReleaseThreshold)
    return fail(cudaErrorInvalidValue);
  *static_cast<uint64_t*>(value) = hone::emu::g_pool_release_threshold;
  return cudaSuccess;
}
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t) {
  if (pool != reinterpret_cast<cudaMemPool_t>(&hone::emu::g_default_pool)) return fail(cudaErrorInvalidValue);
  ++hone::emu::g_pool_trims;
  return cudaSuccess;
}
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) {
  ++hone::emu::g_malloc_async;
  return hone::emu::device_alloc(p, bytes);
}
cudaError_t cudaFree(void* p) {
  if (p) ++hone::emu::g_free;
  return hone::emu::device_free(p);
}
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return hone::emu::device_free(p); }

cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) {
  *p = std::malloc(bytes ? bytes : 1);
  if (!*p) return fail(cudaErrorMemoryAllocation);
  std::lock_guard<std::mutex> lock(hone::emu::g_pinned_mu);
  hone::emu::g_pinned[reinterpret_cast<uintptr_t>(*p)] = bytes;
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** p, size_t bytes) { return cudaHostAlloc(p, bytes, 0); }
cudaError_t cudaFreeHost(void* p) {
  if (!p) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(hone::emu::g_pinned_mu);
    if (!hone::emu::g_pinned.erase(reinterpret_cast<uintptr_t>(p))) return fail(cudaErrorInvalidValue);
  }
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  return hone::emu::copy(dst, src, n, kind, "cudaMemcpy");
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t) {
  return hone::emu::copy(dst, src, n, kind, "cudaMemcpyAsync");
}
cudaError_t cudaMemset(void* dst, int value, size_t n) { return hone::emu::set(dst, value, n, "cudaMemset"); }
cudaError_t cudaMemsetAsync(void* dst, int value, size_t n, cudaStream_t) {
  return hone::emu::set(dst, value, n, "cudaMemsetAsync");
}

cudaError_t cudaMemset2DAsync(void* dst, size_t pitch, int value, size_t width, size_t height, cudaStream_t) {
  if (width == 0 || height == 0) return cudaSuccess;
  if (width > pitch) return fail(cudaErrorInvalidValue);
  hone::emu::set(dst, value, (height - 1) * pitch + width, "cudaMemset2DAsync");  // the span: checked once
  const hone::emu::DeviceAccess access;
  for (size_t r = 0; r < height; ++r) std::memset(static_cast<char*>(dst) + r * pitch, value, width);
  return cudaSuccess;
}
cudaError_t cudaMemset2D(void* dst, size_t pitch, int value, size_t width, size_t height) {
  return cudaMemset2DAsync(dst, pitch, value, width, height, nullptr);
}

cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = reinterpret_cast<cudaStream_t>(new int(0));
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) { return cudaStreamCreate(s); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete reinterpret_cast<int*>(s);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  ++hone::emu::g_synchronize;
  return cudaSuccess;
}

namespace {
struct EmuEvent {
  std::chrono::steady_clock::time_point at;
};
}  // namespace

cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = reinterpret_cast<cudaEvent_t>(new EmuEvent());
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete reinterpret_cast<EmuEvent*>(e);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  reinterpret_cast<EmuEvent*>(e)->at = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
// The emulator runs work as it is enqueued: every recorded event has completed.
cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) {
  ++hone::emu::g_synchronize;
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  *ms = std::chrono::duration<float, std::milli>(reinterpret_cast<EmuEvent*>(end)->at -
                                                 reinterpret_cast<EmuEvent*>(start)->at)
            .count();
  return cudaSuccess;
}

// What the cuDNN frontend links against beyond that. Streams never capture (so no CUDA graph, no
// user objects); there is no driver API to look up entry points in (the frontend then leaves the
// context alone); run-time loaded kernel libraries (the frontend's NVRTC engines) are refused.
cudaError_t cudaStreamGetCaptureInfo(cudaStream_t, cudaStreamCaptureStatus* status, unsigned long long* id,
                                     cudaGraph_t* graph, const cudaGraphNode_t** deps, const cudaGraphEdgeData** edges,
                                     size_t* num_deps) {
  if (status) *status = cudaStreamCaptureStatusNone;
  if (id) *id = 0;
  if (graph) *graph = nullptr;
  if (deps) *deps = nullptr;
  if (edges) *edges = nullptr;
  if (num_deps) *num_deps = 0;
  return cudaSuccess;
}
cudaError_t cudaThreadExchangeStreamCaptureMode(cudaStreamCaptureMode*) { return cudaSuccess; }
cudaError_t cudaUserObjectCreate(cudaUserObject_t*, void*, cudaHostFn_t, unsigned int, unsigned int) {
  return cudaErrorNotSupported;
}
cudaError_t cudaUserObjectRelease(cudaUserObject_t, unsigned int) { return cudaErrorNotSupported; }
cudaError_t cudaGraphRetainUserObject(cudaGraph_t, cudaUserObject_t, unsigned int, unsigned int) {
  return cudaErrorNotSupported;
}
cudaError_t cudaGetDriverEntryPointByVersion(const char*, void** fn, unsigned int, unsigned long long,
                                             cudaDriverEntryPointQueryResult* status) {
  if (fn) *fn = nullptr;
  if (status) *status = cudaDriverEntryPointSymbolNotFound;
  return cudaErrorNotSupported;
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* a, const void* p) {
  *a = cudaPointerAttributes{};
  const bool device = p != nullptr && hone::emu::is_device_pointer(p);
  a->type = device ? cudaMemoryTypeDevice : cudaMemoryTypeUnregistered;
  a->devicePointer = device ? const_cast<void*>(p) : nullptr;
  a->hostPointer = device ? nullptr : const_cast<void*>(p);
  return cudaSuccess;
}
cudaError_t cudaLibraryLoadData(cudaLibrary_t*, const void*, cudaJitOption*, void**, unsigned int, cudaLibraryOption*,
                                void**, unsigned int) {
  return cudaErrorNotSupported;
}
cudaError_t cudaLibraryGetKernel(cudaKernel_t*, cudaLibrary_t, const char*) { return cudaErrorNotSupported; }
cudaError_t cudaLibraryUnload(cudaLibrary_t) { return cudaErrorNotSupported; }
cudaError_t cudaKernelSetAttributeForDevice(cudaKernel_t, cudaFuncAttribute, int, int) { return cudaErrorNotSupported; }
cudaError_t cudaLaunchKernel(const void*, dim3, dim3, void**, size_t, cudaStream_t) { return cudaErrorNotSupported; }
