//===- Compiler.cpp - the JIT compiler and its kernel cache ---------------===//
//
// Part of attnc. A spec is parsed, canonicalized and printed; the hash of that
// text, the target, the tile overrides, the function and the compiler version
// is the cache key. The raw key hashes the exact text and options instead.
//
// The memory cache (per Compiler) maps keys, and raw keys as aliases, to
// kernels; beyond Options::memoryCacheEntries kernels the least recently used
// is dropped. The disk cache holds one directory per key:
//   <cache>/<key>/entry.json   version, key, target, function, the raw keys
//                              compiled to it, the size and BLAKE3 hash of
//                              every other file, the CPU signature and value
//                              checks, and entry_sha256: the SHA-256 of all
//                              of that (the JSON with sorted keys)
//   GPU: an attn-aot directory (manifest.json, .ptx, .cubin, launcher); for
//        linear attention and scans manifest.json (a kernel of kind
//        "linear") and the .ptx
//   CPU: kernel.o (native object code, linked with ORC on a hit)
//   <cache>/raw/<raw key>      the key of the entry this text compiles to
// Nothing read is trusted: an entry is used only when entry.json matches its
// hash and every file its size and hash; a raw index only when the entry it
// names lists the raw key. Anything else is a miss: the entry is deleted,
// rebuilt and overwritten, with a warning (ATTNC_LOG=1). Entries and index
// files are written to temporaries and renamed into place, so concurrent
// processes never see half an entry. The directory is created 0700, and one
// owned by another user or writable by others is refused. Entries beyond the
// size cap (Options::cacheMaxBytes) are evicted least recently used first; a
// hit refreshes the entry directory's mtime.
//
//===----------------------------------------------------------------------===//

#include "Kernels.h"

#include "attnc/Conversion/AttnToGPU.h"
#include "attnc/Dialect/Attn/Attn.h"
#include "attnc/Dialect/Attn/SpecFunctions.h"
#include "attnc/Target/Aot.h"
#include "attnc/Target/CudaToolkit.h"
#include "attnc/Target/Pipelines.h"
#include "attnc/Target/ValueChecks.h"
#include "attnc/Transforms/AttnLowering.h"
#include "attnc/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/BLAKE3.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <list>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ATTNC_VERSION
#define ATTNC_VERSION "0.0.0"
#endif
#ifndef ATTNC_REVISION
#define ATTNC_REVISION "unknown"
#endif

using namespace attnc;
using llvm::StringRef;
namespace fs = llvm::sys::fs;

StringRef Compiler::version() {
  static const std::string v = std::string("attnc ") + ATTNC_VERSION + " (" +
                               ATTNC_REVISION + ", MLIR " +
                               LLVM_VERSION_STRING + ")";
  return v;
}

/// The BLAKE3 hash of a cache entry's file (several times faster than
/// SHA-256: a GPU entry's launcher holds the cubin and PTX as C text).
static std::string contentHash(StringRef data) {
  llvm::BLAKE3Result<32> h = llvm::BLAKE3::hash<32>(
      llvm::ArrayRef<uint8_t>(data.bytes_begin(), data.bytes_end()));
  return llvm::toHex(h, /*LowerCase=*/true);
}

static std::string sha256Hex(StringRef data) {
  std::array<uint8_t, 32> h = llvm::SHA256::hash(
      llvm::ArrayRef<uint8_t>(data.bytes_begin(), data.bytes_end()));
  return llvm::toHex(h, /*LowerCase=*/true);
}

static std::string defaultCacheDir() {
  if (const char *p = std::getenv("ATTNC_CACHE_DIR"))
    return p;
  if (const char *p = std::getenv("XDG_CACHE_HOME"); p && *p)
    return std::string(p) + "/attnc";
  if (const char *p = std::getenv("HOME"); p && *p)
    return std::string(p) + "/.cache/attnc";
  return "";
}

/// Writes `msg` to stderr when ATTNC_LOG=1. The caches report what they
/// refuse this way (a damaged or edited entry, a raw index that names the
/// wrong entry) and carry on with a recompile.
static bool logEnabled() {
  const char *v = std::getenv("ATTNC_LOG");
  return v && StringRef(v) == "1";
}
static void logWarning(const llvm::Twine &msg) {
  if (logEnabled())
    llvm::errs() << "attnc: warning: " << msg << "\n";
}
/// Writes `msg` to stderr when ATTNC_LOG=1: cache hits and misses, the
/// kernel each compile chose (variant and tiles) and its fallbacks.
static void logInfo(const llvm::Twine &msg) {
  if (logEnabled())
    llvm::errs() << "attnc: " << msg << "\n";
}

/// What `k` is, for the log: its variant and tiles, and why it is not the
/// target's first choice where it is not.
static std::string describeKernel(const abi::Kernel &k, StringRef target) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "'" << k.name << "': " << target;
  if (k.kind == abi::KernelKind::Linear) {
    const abi::LinearKernel &l = k.linear;
    os << " linear kernel, chunk " << l.chunk << ", value-dim slice "
       << l.dvSlice << ", " << l.main.block[0] << " threads";
    return s;
  }
  if (k.kind == abi::KernelKind::Elementwise) {
    os << " elementwise kernel";
    return s;
  }
  if (k.kind == abi::KernelKind::AttentionGrad) {
    const abi::AttentionGradKernel &g = k.attentionGrad;
    os << " attention backward kernels, tiles " << g.blockQ << " (dq) and "
       << g.blockKv << " (dkdv), " << g.dq.block[0] << " and "
       << g.dkdv.block[0] << " threads";
    return s;
  }
  const abi::AttentionKernel &a = k.attention;
  os << (a.variant == abi::Variant::Wgmma ? " wgmma" : " mma.sync")
     << " kernel, tile " << a.blockQ << "x" << a.blockKv << ", "
     << a.main.block[0] << " threads, " << a.sharedBytes << " B shared"
     << (a.blockMap ? ", block map" : "");
  if (!a.fallback.empty())
    os << "; fallback: " << a.fallback;
  return s;
}

/// A positive count from the environment variable `name` (an optional K, M
/// or G suffix multiplies by 2^10, 2^20, 2^30), else `fallback`.
static uint64_t envCount(const char *name, uint64_t fallback) {
  const char *v = std::getenv(name);
  if (!v || !*v)
    return fallback;
  StringRef s = StringRef(v).trim();
  unsigned shift = 0;
  if (!s.empty() && StringRef("KMG").contains(llvm::toUpper(s.back()))) {
    shift = 10 * (StringRef("KMG").find(llvm::toUpper(s.back())) + 1);
    s = s.drop_back();
  }
  uint64_t n = 0;
  if (s.getAsInteger(10, n) || n == 0 || n > (UINT64_MAX >> shift)) {
    logWarning(llvm::Twine(name) + "='" + v +
               "' is not a positive count; using " + llvm::Twine(fallback));
    return fallback;
  }
  return n << shift;
}

/// Whether `s` is a cache key (64 lower-case hex digits).
static bool isKey(StringRef s) {
  return s.size() == 64 && llvm::all_of(s, [](char c) {
           return llvm::isDigit(c) || (c >= 'a' && c <= 'f');
         });
}

namespace {
/// The in-memory kernel cache: kernels by key, and aliases from raw keys
/// (the hash of the exact text and options) to keys. Beyond `capacity`
/// kernels the least recently used one is dropped with its aliases; a kernel
/// a caller still holds lives on (kernels are shared).
class MemoryCache {
public:
  void setCapacity(size_t n) { capacity = std::max<size_t>(n, 1); }
  std::shared_ptr<Kernel> find(StringRef key) {
    auto it = byKey.find(key);
    if (it == byKey.end())
      return nullptr;
    lru.splice(lru.begin(), lru, it->second);
    return it->second->kernel;
  }
  std::shared_ptr<Kernel> findRaw(StringRef rawKey) {
    auto it = byRaw.find(rawKey);
    return it == byRaw.end() ? nullptr : find(it->second);
  }
  /// Remembers `kernel` under `key` (keeping an existing one) and `rawKey`
  /// as an alias of `key`.
  void insert(StringRef key, StringRef rawKey, std::shared_ptr<Kernel> kernel) {
    if (!find(key)) {
      lru.push_front({key.str(), std::move(kernel), {}});
      byKey[key] = lru.begin();
    }
    Slot &slot = *lru.begin();
    if (!rawKey.empty() && byRaw.insert({rawKey, key.str()}).second) {
      slot.rawKeys.push_back(rawKey.str());
      // A spec respelled many times keeps only its newest aliases.
      if (slot.rawKeys.size() > kMaxAliases) {
        byRaw.erase(slot.rawKeys.front());
        slot.rawKeys.erase(slot.rawKeys.begin());
      }
    }
    while (lru.size() > capacity) {
      for (const std::string &r : lru.back().rawKeys)
        byRaw.erase(r);
      byKey.erase(lru.back().key);
      lru.pop_back();
    }
  }

private:
  static constexpr size_t kMaxAliases = 8;
  struct Slot {
    std::string key;
    std::shared_ptr<Kernel> kernel;
    std::vector<std::string> rawKeys;
  };
  size_t capacity = 64;
  std::list<Slot> lru; // most recently used first
  llvm::StringMap<std::list<Slot>::iterator> byKey;
  llvm::StringMap<std::string> byRaw;
};

/// A disk entry whose metadata and files matched their hashes.
struct DiskEntry {
  std::string dir;
  llvm::json::Object meta;
  llvm::StringMap<std::string> contents;
};

/// The disk cache (the layout is in the header comment). Nothing read is
/// trusted: an entry is used only when entry.json matches its own hash and
/// every file its recorded size and hash, and a raw index only when the
/// entry it names lists the raw key. Every write is a temporary file or
/// directory renamed into place.
class DiskCache {
public:
  DiskCache(std::string dir, uint64_t maxBytes)
      : dir(std::move(dir)), maxBytes(maxBytes) {}
  /// Creates the directory (mode 0700) or checks the existing one. False
  /// (with a warning) when it cannot be created: the compile goes on
  /// without it. An error when it is not ours to trust.
  llvm::Expected<bool> prepare() const;
  /// The key that raw/<rawKey> names, unverified.
  std::optional<std::string> rawIndex(StringRef rawKey) const;
  /// Entry `key`, verified; its directory's mtime is refreshed (LRU).
  llvm::Expected<DiskEntry> read(StringRef key) const;
  /// Whether entry metadata `meta` was compiled from raw key `rawKey`.
  static bool serves(const llvm::json::Object &meta, StringRef rawKey);
  /// Stores an entry: `meta` gains the version, key, raw keys and the file
  /// index. Keeps an entry another process stored first. Then evicts least
  /// recently used entries beyond the size cap.
  void store(StringRef key, StringRef rawKey,
             llvm::ArrayRef<std::pair<std::string, std::string>> files,
             llvm::json::Object meta) const;
  /// Records that the text of `rawKey` compiles to the stored entry `key`
  /// (its raw_keys and the raw index).
  void addRawKey(StringRef key, StringRef rawKey) const;
  /// Moves entry `key` aside and deletes it.
  void discard(StringRef key) const;

private:
  std::string entryPath(StringRef key) const { return dir + "/" + key.str(); }
  llvm::Expected<llvm::json::Object> readMeta(StringRef key) const;
  bool writeMeta(StringRef path, llvm::json::Object meta) const;
  void evict(StringRef keep) const;
  llvm::Error refuse(const llvm::Twine &why) const;

  std::string dir;
  uint64_t maxBytes;
};
} // namespace

/// The hash of entry metadata: its JSON (keys sorted) without the hash.
static std::string metadataHash(const llvm::json::Object &meta) {
  llvm::json::Object copy = meta;
  copy.erase("entry_sha256");
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::json::Value(std::move(copy));
  return sha256Hex("attnc cache entry\n" + text);
}

/// Writes `data` to `path` through a temporary file renamed over it.
static bool atomicWrite(const llvm::Twine &path, StringRef data) {
  llvm::SmallString<128> tmp;
  if (fs::createUniqueFile(path + ".tmp-%%%%%%%%", tmp))
    return false;
  llvm::Error e = mlir::attn::writeFile(tmp, data);
  if (!e && !fs::rename(tmp, path))
    return true;
  llvm::consumeError(std::move(e));
  fs::remove(tmp);
  return false;
}

llvm::Error DiskCache::refuse(const llvm::Twine &why) const {
  return makeError("refusing the kernel cache directory '" + dir + "': " + why +
                   ". Fix it, or choose another directory (ATTNC_CACHE_DIR, "
                   "Compiler::Options::cacheDir, cache_dir=) or none");
}

llvm::Expected<bool> DiskCache::prepare() const {
  if (!fs::exists(dir)) {
    StringRef parent = llvm::sys::path::parent_path(dir);
    std::error_code ec;
    if (!parent.empty())
      ec = fs::create_directories(parent);
    if (!ec)
      ec = fs::create_directory(dir, /*IgnoreExisting=*/true, fs::owner_all);
    if (ec) {
      logWarning("cannot create the kernel cache directory '" + dir +
                 "': " + ec.message() + "; compiling without it");
      return false;
    }
  }
  struct stat st;
  if (::stat(dir.c_str(), &st))
    return refuse(std::strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return refuse("it is not a directory");
  if (st.st_uid != ::geteuid())
    return refuse("it is owned by another user (uid " +
                  llvm::Twine(unsigned(st.st_uid)) + ", not " +
                  llvm::Twine(unsigned(::geteuid())) +
                  "), who could plant kernels in it");
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", unsigned(st.st_mode & 07777));
    return refuse("it is writable by group or others (mode " +
                  llvm::Twine(mode) +
                  "), who could plant kernels in it; `chmod go-w` it");
  }
  return true;
}

std::optional<std::string> DiskCache::rawIndex(StringRef rawKey) const {
  auto buf = llvm::MemoryBuffer::getFile(dir + "/raw/" + rawKey);
  if (!buf)
    return std::nullopt;
  StringRef key = (*buf)->getBuffer().trim();
  if (!isKey(key))
    return std::nullopt;
  return key.str();
}

bool DiskCache::serves(const llvm::json::Object &meta, StringRef rawKey) {
  const llvm::json::Array *raws = meta.getArray("raw_keys");
  return raws && llvm::any_of(*raws, [&](const llvm::json::Value &v) {
           return v.getAsString() == rawKey;
         });
}

llvm::Expected<llvm::json::Object> DiskCache::readMeta(StringRef key) const {
  auto buf = llvm::MemoryBuffer::getFile(entryPath(key) + "/entry.json");
  if (!buf)
    return makeError("no entry.json");
  auto v = llvm::json::parse((*buf)->getBuffer());
  if (!v)
    return makeError("entry.json does not parse: " +
                     llvm::toString(v.takeError()));
  llvm::json::Object *meta = v->getAsObject();
  if (!meta)
    return makeError("entry.json is not an object");
  std::optional<StringRef> hash = meta->getString("entry_sha256");
  if (!hash || *hash != metadataHash(*meta))
    return makeError("entry.json does not match its hash (edited or damaged)");
  if (meta->getString("attnc") != Compiler::version())
    return makeError("the entry is from another compiler version");
  if (meta->getString("key") != key)
    return makeError("the entry is for another key");
  return std::move(*meta);
}

llvm::Expected<DiskEntry> DiskCache::read(StringRef key) const {
  DiskEntry entry;
  entry.dir = entryPath(key);
  auto meta = readMeta(key);
  if (!meta)
    return meta.takeError();
  entry.meta = std::move(*meta);
  const llvm::json::Object *files = entry.meta.getObject("files");
  if (!files)
    return makeError("the entry has no file index");
  for (const auto &[name, info] : *files) {
    const llvm::json::Object *f = info.getAsObject();
    StringRef n = name;
    if (!f || n.empty() || n.contains('/') || n.starts_with(".") ||
        n == "entry.json")
      return makeError("the entry lists a bad file name");
    auto buf = llvm::MemoryBuffer::getFile(entry.dir + "/" + n);
    if (!buf || f->getInteger("size") != int64_t((*buf)->getBufferSize()) ||
        f->getString("blake3") != StringRef(contentHash((*buf)->getBuffer())))
      return makeError("file " + n + " is missing or does not match its hash");
    entry.contents[n] = (*buf)->getBuffer().str();
  }
  // A hit: the entry becomes the most recently used.
  ::utimensat(AT_FDCWD, entry.dir.c_str(), nullptr, 0);
  return entry;
}

/// Writes entry metadata `meta`, with its hash, to `path`.
bool DiskCache::writeMeta(StringRef path, llvm::json::Object meta) const {
  meta.erase("entry_sha256");
  std::string hash = metadataHash(meta);
  meta["entry_sha256"] = std::move(hash);
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(meta)));
  return atomicWrite(path, text);
}

void DiskCache::store(StringRef key, StringRef rawKey,
                      llvm::ArrayRef<std::pair<std::string, std::string>> files,
                      llvm::json::Object meta) const {
  // A cache that cannot be written only costs speed: failures are logged.
  llvm::SmallString<128> tmp;
  if (fs::createUniqueDirectory(entryPath(key) + ".tmp", tmp)) {
    logWarning("cannot write to the kernel cache directory '" + dir + "'");
    return;
  }
  llvm::scope_exit cleanup([&] { fs::remove_directories(tmp, true); });
  llvm::json::Object fileIndex;
  for (const auto &[name, data] : files) {
    if (llvm::Error e = mlir::attn::writeFile((tmp + "/" + name).str(), data)) {
      logWarning("cannot write a kernel cache entry: " +
                 llvm::toString(std::move(e)));
      return;
    }
    fileIndex[name] = llvm::json::Object{{"size", int64_t(data.size())},
                                         {"blake3", contentHash(data)}};
  }
  meta["attnc"] = Compiler::version();
  meta["key"] = key;
  meta["files"] = std::move(fileIndex);
  meta["raw_keys"] =
      rawKey.empty() ? llvm::json::Array() : llvm::json::Array{rawKey};
  if (!writeMeta((tmp + "/entry.json").str(), std::move(meta)))
    return;
  // Another process may have stored the same entry first: keep theirs.
  bool stored = !fs::rename(tmp, entryPath(key));
  addRawKey(key, rawKey);
  if (stored)
    evict(key);
}

void DiskCache::addRawKey(StringRef key, StringRef rawKey) const {
  if (rawKey.empty())
    return;
  auto meta = readMeta(key);
  if (!meta) {
    llvm::consumeError(meta.takeError());
    return;
  }
  if (!serves(*meta, rawKey)) {
    // A spec respelled many times keeps only its newest raw keys.
    llvm::json::Array raws;
    if (const llvm::json::Array *old = meta->getArray("raw_keys"))
      raws = *old;
    raws.push_back(rawKey);
    if (raws.size() > 32)
      raws.erase(raws.begin());
    (*meta)["raw_keys"] = std::move(raws);
    if (!writeMeta(entryPath(key) + "/entry.json", std::move(*meta)))
      return;
  }
  if (rawIndex(rawKey) != key.str() &&
      !fs::create_directory(dir + "/raw", /*IgnoreExisting=*/true,
                            fs::owner_all))
    atomicWrite(dir + "/raw/" + rawKey, key);
}

void DiskCache::discard(StringRef key) const {
  llvm::SmallString<128> trash;
  fs::createUniquePath(entryPath(key) + ".old-%%%%%%%%", trash,
                       /*MakeAbsolute=*/false);
  // Another process may have moved it first.
  if (!fs::rename(entryPath(key), trash))
    fs::remove_directories(trash, /*IgnoreErrors=*/true);
}

/// The bytes of the files in directory `path`.
static uint64_t directoryBytes(StringRef path) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(path, ec), end; it != end && !ec;
       it.increment(ec))
    if (llvm::ErrorOr<fs::basic_file_status> st = it->status())
      total += st->getSize();
  return total;
}

void DiskCache::evict(StringRef keep) const {
  struct Item {
    std::string key;
    uint64_t bytes;
    llvm::sys::TimePoint<> used;
  };
  std::vector<Item> items;
  uint64_t total = 0;
  auto now = std::chrono::system_clock::now();
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; it != end && !ec;
       it.increment(ec)) {
    fs::file_status st;
    StringRef name = llvm::sys::path::filename(it->path());
    if (fs::status(it->path(), st) ||
        st.type() != fs::file_type::directory_file)
      continue;
    if (isKey(name)) {
      items.push_back({name.str(), directoryBytes(it->path()),
                       st.getLastModificationTime()});
      total += items.back().bytes;
    } else if ((name.contains(".tmp-") || name.contains(".old-")) &&
               now - st.getLastModificationTime() > std::chrono::hours(1)) {
      // Left behind by a process that died while writing or deleting.
      fs::remove_directories(it->path(), /*IgnoreErrors=*/true);
    }
  }
  if (total <= maxBytes)
    return;
  llvm::sort(items,
             [](const Item &a, const Item &b) { return a.used < b.used; });
  for (const Item &item : items) {
    if (total <= maxBytes)
      break;
    if (item.key == keep)
      continue;
    // Its raw index files go with it (those that still name it).
    if (auto meta = readMeta(item.key)) {
      if (const llvm::json::Array *raws = meta->getArray("raw_keys"))
        for (const llvm::json::Value &r : *raws)
          if (std::optional<StringRef> rk = r.getAsString();
              rk && isKey(*rk) && rawIndex(*rk) == item.key)
            fs::remove(dir + "/raw/" + *rk);
    } else {
      llvm::consumeError(meta.takeError());
    }
    discard(item.key);
    total -= item.bytes;
  }
}

struct LinearFunction;

struct Compiler::Impl {
  Options options;
  /// The disk cache's directory; empty while it is off (also for the parts
  /// of a GPU program, and when it cannot be created).
  std::string cacheDir;
  std::optional<DiskCache> disk;
  std::mutex mu;
  std::unique_ptr<mlir::MLIRContext> ctx;
  MemoryCache memory;
  CacheStats stats;

  /// What is being compiled.
  struct Job {
    CompileOptions options;
    std::string key, rawKey;
    std::string function;
    mutable mlir::ModuleOp module;
  };

  llvm::Expected<std::shared_ptr<Kernel>>
  compile(StringRef spec, StringRef bufferName, const CompileOptions &opts);
  /// The kernel of the stored entry raw/<rawKey> names, when that entry
  /// verifies and lists `rawKey`; else null.
  std::shared_ptr<Kernel> fromRawIndex(StringRef rawKey,
                                       const CompileOptions &opts);
  /// The kernel of the job's stored entry; null (after deleting the entry
  /// when it is unusable) when there is none.
  std::shared_ptr<Kernel> fromDisk(const Job &job);
  /// The kernel of a verified entry for (function, target); an empty
  /// `function` accepts the entry's.
  llvm::Expected<std::shared_ptr<Kernel>>
  kernelOf(const DiskEntry &entry, StringRef function, StringRef target);
  void remember(StringRef key, StringRef rawKey,
                const std::shared_ptr<Kernel> &kernel) {
    if (options.memoryCache)
      memory.insert(key, rawKey, kernel);
  }
  llvm::Expected<std::shared_ptr<Kernel>> build(const Job &job);
  llvm::Expected<std::shared_ptr<Kernel>> buildLinear(const Job &job,
                                                      mlir::func::FuncOp func,
                                                      const LinearFunction &lf);
  llvm::Expected<std::shared_ptr<Kernel>> buildProgram(const Job &job,
                                                       mlir::func::FuncOp func);
  /// buildProgram's state: the program's steps and where values live.
  struct ProgramBuilder;
  void store(const Job &job,
             llvm::ArrayRef<std::pair<std::string, std::string>> files,
             llvm::json::Object extra = {}) {
    extra["target"] = job.options.target;
    extra["function"] = job.function;
    disk->store(job.key, job.rawKey, files, std::move(extra));
  }
  /// The job's entry directory once stored; empty when it is not there
  /// (the cache could not be written).
  std::string entryDir(const Job &job) {
    std::string d = cacheDir + "/" + job.key;
    return fs::is_directory(d) ? d : std::string();
  }
};

Compiler::Compiler() : Compiler(Options()) {}

Compiler::Compiler(Options options) : impl(std::make_unique<Impl>()) {
  impl->options = options;
  if (options.diskCache)
    impl->cacheDir =
        options.cacheDir.empty() ? defaultCacheDir() : options.cacheDir;
  if (!impl->cacheDir.empty()) {
    // Absolute: a relative directory would follow the process's working
    // directory, and LLVM creates unique temporaries of relative names in
    // the system's temporary directory (every store then failed).
    llvm::SmallString<128> abs(impl->cacheDir);
    if (!fs::make_absolute(abs))
      impl->cacheDir = std::string(abs);
  }
  if (!impl->cacheDir.empty())
    impl->disk.emplace(impl->cacheDir,
                       options.cacheMaxBytes
                           ? options.cacheMaxBytes
                           : envCount("ATTNC_CACHE_MAX_BYTES", 2ull << 30));
  impl->memory.setCapacity(options.memoryCacheEntries
                               ? options.memoryCacheEntries
                               : envCount("ATTNC_MEMORY_CACHE_ENTRIES", 64));
  mlir::DialectRegistry registry;
  mlir::attn::registerAttncDialects(registry);
  impl->ctx = std::make_unique<mlir::MLIRContext>(registry);
  impl->ctx->loadAllAvailableDialects();
  // Diagnostics reach the caller through llvm::Error, never stderr.
  impl->ctx->printOpOnDiagnostic(false);
}

Compiler::~Compiler() = default;

CacheStats Compiler::stats() const {
  std::lock_guard<std::mutex> lock(impl->mu);
  return impl->stats;
}

std::string Compiler::cacheDir() const { return impl->cacheDir; }

llvm::Expected<std::shared_ptr<Kernel>>
Compiler::compile(StringRef spec, const CompileOptions &options) {
  std::lock_guard<std::mutex> lock(impl->mu);
  return impl->compile(spec, "<spec>", options);
}

llvm::Expected<std::shared_ptr<Kernel>>
Compiler::compileFile(StringRef path, const CompileOptions &options) {
  auto buf = llvm::MemoryBuffer::getFile(path);
  if (!buf)
    return makeError("cannot read '" + path + "': " + buf.getError().message());
  std::lock_guard<std::mutex> lock(impl->mu);
  return impl->compile((*buf)->getBuffer(), path, options);
}

/// The function of `module` to compile: `name`, else the only one with attn
/// operations.
static llvm::Expected<mlir::func::FuncOp>
selectFunction(mlir::ModuleOp module, StringRef name,
               const std::string &diagText) {
  auto specFuncs = mlir::attn::specFunctions(module);
  if (failed(specFuncs))
    return makeError("the spec cannot be compiled:\n" + diagText);
  if (!name.empty()) {
    auto func = module.lookupSymbol<mlir::func::FuncOp>(name);
    if (!func)
      return makeError("the spec has no function '" + name + "'");
    return func;
  }
  llvm::SmallVector<mlir::func::FuncOp> &funcs = *specFuncs;
  if (funcs.size() == 1)
    return funcs.front();
  if (funcs.empty())
    return makeError("the spec has no function with an attn operation");
  std::string names;
  for (auto f : funcs)
    names += (names.empty() ? "" : ", ") + f.getName().str();
  return makeError("the spec has " + llvm::Twine(funcs.size()) +
                   " functions with attn operations (" + names +
                   "): name one in CompileOptions::function");
}

static llvm::Error deriveFunction(mlir::ModuleOp module, StringRef name,
                                  const std::string &diagText);

/// Runs `pass` on `module` to make `name`; an error naming `what` failed.
static llvm::Error runDerivation(mlir::ModuleOp module,
                                 std::unique_ptr<mlir::Pass> pass,
                                 StringRef name, StringRef what, StringRef base,
                                 const std::string &diagText) {
  mlir::PassManager pm(module.getContext());
  pm.addPass(std::move(pass));
  if (failed(pm.run(module)))
    return makeError("'" + name + "': " + what + " failed on '" + base +
                     "':\n" + diagText);
  return llvm::Error::success();
}

/// A function the spec does not have but one of attnc's passes makes from
/// one it has (or can make): `<f>_forward` / `<f>_backward` by
/// attn-differentiate (as attn-aot --backward and attn-run --backward do),
/// `<f>_lasp_layout` / `_lasp_attention` / `_lasp_state` / `_lasp_combine` /
/// `_lasp_combine_grad` / `_lasp_output` by attn-sequence-parallel; so
/// `<f>_lasp_output_backward` is both in turn. A spec compiles to any of them
/// in one step.
static llvm::Error deriveFunction(mlir::ModuleOp module, StringRef name,
                                  const std::string &diagText) {
  if (name.empty() || module.lookupSymbol(name))
    return llvm::Error::success();
  for (StringRef suffix : {"_forward", "_backward"}) {
    StringRef base = name;
    if (!base.consume_back(suffix))
      continue;
    if (llvm::Error e = deriveFunction(module, base, diagText))
      return e;
    if (!module.lookupSymbol<mlir::func::FuncOp>(base))
      continue;
    mlir::attn::AttnDifferentiateOptions opts;
    opts.funcName = base.str();
    return runDerivation(module, mlir::attn::createAttnDifferentiate(opts),
                         name, "attn-differentiate", base, diagText);
  }
  for (StringRef suffix :
       {"_lasp_layout", "_lasp_attention", "_lasp_state", "_lasp_combine_grad",
        "_lasp_combine", "_lasp_output"}) {
    StringRef base = name;
    if (!base.consume_back(suffix) ||
        !module.lookupSymbol<mlir::func::FuncOp>(base))
      continue;
    mlir::attn::AttnSequenceParallelOptions opts;
    opts.funcName = base.str();
    return runDerivation(module, mlir::attn::createAttnSequenceParallel(opts),
                         name, "attn-sequence-parallel", base, diagText);
  }
  return llvm::Error::success();
}

/// The canonical spec: canonicalized, printed without locations; run-time
/// attributes for attn-run do not change the kernel.
static llvm::Expected<std::string> canonicalSpec(mlir::ModuleOp module,
                                                 mlir::func::FuncOp func,
                                                 StringRef diagText) {
  for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
    if (mlir::DictionaryAttr dict = func.getArgAttrDict(i))
      for (mlir::NamedAttribute attr : dict)
        if (attr.getName().getValue().starts_with("attn."))
          func.removeArgAttr(i, attr.getName());
  mlir::PassManager pm(module.getContext());
  pm.addPass(mlir::createCanonicalizerPass());
  if (failed(pm.run(module)))
    return makeError("the spec does not canonicalize:\n" + diagText);
  std::string canonical;
  llvm::raw_string_ostream os(canonical);
  module.print(os, mlir::OpPrintingFlags().enableDebugInfo(false));
  return canonical;
}

llvm::Expected<std::shared_ptr<Kernel>>
Compiler::Impl::compile(StringRef spec, StringRef bufferName,
                        const CompileOptions &opts) {
  if (opts.target != "cpu" && opts.target != "sm_80" && opts.target != "sm_90a")
    return makeError("unsupported target '" + opts.target +
                     "' (expected cpu, sm_80 or sm_90a)");
  if (opts.blockQ < 0 || opts.blockKv < 0)
    return makeError("tile sizes must not be negative");
  std::string knobs = (opts.target + "\n" + llvm::Twine(opts.blockQ) + "\n" +
                       llvm::Twine(opts.blockKv) + "\n" + opts.function + "\n")
                          .str();
  std::string rawKey = sha256Hex((version() + "\n" + knobs + spec).str());
  if (options.memoryCache)
    if (std::shared_ptr<Kernel> k = memory.findRaw(rawKey)) {
      ++stats.memoryHits;
      logInfo("kernel cache: memory hit (the same text, " + opts.target + ")");
      return k;
    }

  // The disk cache must be a directory of ours; one that cannot be created
  // is skipped for this compile.
  std::string savedCacheDir = cacheDir;
  llvm::scope_exit restore([&] { cacheDir = savedCacheDir; });
  if (!cacheDir.empty()) {
    llvm::Expected<bool> usable = disk->prepare();
    if (!usable)
      return usable.takeError();
    if (!*usable)
      cacheDir.clear();
  }
  // The same text compiled before, by any process: the raw index names the
  // entry, which loads without parsing the spec.
  if (!cacheDir.empty())
    if (std::shared_ptr<Kernel> k = fromRawIndex(rawKey, opts))
      return k;

  // Parse, with diagnostics collected for the error message.
  llvm::SourceMgr sm;
  sm.AddNewSourceBuffer(llvm::MemoryBuffer::getMemBufferCopy(spec, bufferName),
                        llvm::SMLoc());
  std::string diagText;
  llvm::raw_string_ostream diagOs(diagText);
  mlir::SourceMgrDiagnosticHandler handler(sm, ctx.get(), diagOs);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceFile<mlir::ModuleOp>(sm, mlir::ParserConfig(ctx.get()));
  if (!module)
    return makeError("the spec does not parse:\n" + diagText);
  if (llvm::Error e = deriveFunction(*module, opts.function, diagText))
    return e;
  llvm::Expected<mlir::func::FuncOp> func =
      selectFunction(*module, opts.function, diagText);
  if (!func)
    return func.takeError();
  llvm::Expected<std::string> canonical =
      canonicalSpec(*module, *func, diagText);
  if (!canonical)
    return canonical.takeError();
  Job job;
  job.options = opts;
  job.function = func->getName().str();
  job.module = *module;
  job.key = sha256Hex(
      (version() + "\n" + knobs + job.function + "\n" + *canonical).str());
  job.rawKey = rawKey;
  std::shared_ptr<Kernel> kernel;
  if (options.memoryCache && (kernel = memory.find(job.key))) {
    ++stats.memoryHits;
    logInfo("kernel cache: memory hit for '" + job.function + "' (" +
            opts.target + ")");
  } else if (!cacheDir.empty() && (kernel = fromDisk(job))) {
    ++stats.diskHits;
    logInfo("kernel cache: disk hit for '" + job.function + "' (" +
            opts.target + "): " + cacheDir + "/" + job.key);
  }
  if (!kernel) {
    logInfo("kernel cache: miss for '" + job.function + "' (" + opts.target +
            (cacheDir.empty() ? ", no disk cache" : "") + "); compiling");
    auto k = build(job);
    if (!k) {
      std::string msg = llvm::toString(k.takeError());
      if (!diagText.empty())
        msg += "\n" + diagText;
      return makeError(msg);
    }
    ++stats.compiles;
    kernel = *k;
  }
  remember(job.key, rawKey, kernel);
  return kernel;
}

std::shared_ptr<Kernel>
Compiler::Impl::fromRawIndex(StringRef rawKey, const CompileOptions &opts) {
  std::optional<std::string> key = disk->rawIndex(rawKey);
  if (!key)
    return nullptr;
  llvm::Expected<DiskEntry> entry = disk->read(*key);
  if (!entry) {
    // The full path finds the entry again, reports it and rebuilds it.
    llvm::consumeError(entry.takeError());
    return nullptr;
  }
  if (!DiskCache::serves(entry->meta, rawKey)) {
    logWarning("kernel cache: the raw index '" + cacheDir + "/raw/" + rawKey +
               "' names entry " + *key +
               ", which was not compiled from this text (an edited index?); "
               "ignoring it");
    return nullptr;
  }
  std::shared_ptr<Kernel> k = options.memoryCache ? memory.find(*key) : nullptr;
  if (k) {
    ++stats.memoryHits;
    logInfo("kernel cache: memory hit through the raw index: " + cacheDir +
            "/raw/" + rawKey);
  } else {
    auto loaded = kernelOf(*entry, opts.function, opts.target);
    if (!loaded) {
      llvm::consumeError(loaded.takeError());
      return nullptr;
    }
    k = *loaded;
    ++stats.diskHits;
    logInfo("kernel cache: disk hit through the raw index: " + cacheDir + "/" +
            *key);
  }
  remember(*key, rawKey, k);
  return k;
}

std::shared_ptr<Kernel> Compiler::Impl::fromDisk(const Job &job) {
  if (!fs::is_directory(cacheDir + "/" + job.key))
    return nullptr;
  llvm::Expected<DiskEntry> entry = disk->read(job.key);
  llvm::Expected<std::shared_ptr<Kernel>> k =
      entry ? kernelOf(*entry, job.function, job.options.target)
            : llvm::Expected<std::shared_ptr<Kernel>>(entry.takeError());
  if (k) {
    disk->addRawKey(job.key, job.rawKey);
    return *k;
  }
  // Never a wrong kernel: an entry that does not verify is a miss,
  // recompiled and overwritten.
  logWarning("kernel cache entry '" + cacheDir + "/" + job.key +
             "' is unusable (" + llvm::toString(k.takeError()) +
             "); recompiling it");
  disk->discard(job.key);
  ++stats.rebuilt;
  return nullptr;
}

/// The CPU signature: the function's arguments and results.
static llvm::Expected<KernelSignature> cpuSignature(mlir::func::FuncOp func) {
  KernelSignature s;
  s.name = func.getName().str();
  s.target = "cpu";
  auto add = [&](mlir::Type t, std::string name,
                 llvm::SmallVectorImpl<ParamInfo> &dst) -> llvm::Error {
    auto rt = llvm::dyn_cast<mlir::RankedTensorType>(t);
    if (!rt)
      return makeError("'" + s.name + "': parameter '" + name +
                       "' is not a ranked tensor");
    auto dt = dtypeOf(rt.getElementType());
    if (!dt)
      return makeError("'" + s.name + "': parameter '" + name +
                       "': " + llvm::toString(dt.takeError()));
    ParamInfo p;
    p.name = std::move(name);
    p.dtype = *dt;
    for (int64_t d : rt.getShape())
      p.shape.push_back(mlir::ShapedType::isDynamic(d) ? -1 : d);
    dst.push_back(std::move(p));
    return llvm::Error::success();
  };
  for (auto [i, t] : llvm::enumerate(func.getArgumentTypes())) {
    std::string n = i == 0   ? "q"
                    : i == 1 ? "k"
                    : i == 2 ? "v"
                             : "arg" + std::to_string(i);
    if (llvm::Error e = add(t, n, s.inputs))
      return std::move(e);
  }
  for (auto [i, t] : llvm::enumerate(func.getResultTypes()))
    if (llvm::Error e =
            add(t, i == 0 ? "o" : "result" + std::to_string(i), s.outputs))
      return std::move(e);
  return s;
}

/// Whether `func` holds one attn.attention_grad (compileForGpu checks that
/// it is the function's only work, on its arguments).
static bool isAttentionGrad(mlir::func::FuncOp func) {
  unsigned count = 0;
  func.walk([&](mlir::attn::AttentionGradOp) { ++count; });
  return count == 1;
}

/// Whether `func` is one attn.attention on its arguments (q, k, v, captures
/// in order) returning its results.
static mlir::attn::AttentionOp attentionOf(mlir::func::FuncOp func) {
  mlir::attn::AttentionOp found;
  unsigned count = 0;
  func.walk([&](mlir::attn::AttentionOp op) {
    found = op;
    ++count;
  });
  if (count != 1)
    return {};
  // Captures whose uses folded away stay in the kernel's signature.
  llvm::SmallVector<mlir::Value> operands = {found.getQ(), found.getK(),
                                             found.getV()};
  llvm::append_range(operands, mlir::attn::attentionKernelCaptures(found));
  if (operands.size() != func.getNumArguments())
    return {};
  for (auto [v, a] : llvm::zip(operands, func.getArguments()))
    if (v != a)
      return {};
  auto ret = llvm::dyn_cast<mlir::func::ReturnOp>(
      func.getBody().front().getTerminator());
  if (!ret || ret.getNumOperands() != found->getNumResults())
    return {};
  for (auto [v, r] : llvm::zip(ret.getOperands(), found->getResults()))
    if (v != r)
      return {};
  return found;
}

/// A function that is one attn.linear_attention or attn.scan on its
/// arguments (its decay may be a constant) returning its results: the op,
/// the kernel ABI's name of each argument and the constant's decays.
struct LinearFunction {
  mlir::Operation *op = nullptr;
  llvm::SmallVector<std::string> names;
  std::vector<float> constDecay;
};

static std::optional<LinearFunction> linearOf(mlir::func::FuncOp func) {
  LinearFunction lf;
  unsigned count = 0;
  func.walk([&](mlir::Operation *op) {
    if (llvm::isa<mlir::attn::LinearAttentionOp, mlir::attn::ScanOp,
                  mlir::attn::AttentionOp>(op)) {
      lf.op = op;
      ++count;
    }
  });
  if (count != 1 || llvm::isa<mlir::attn::AttentionOp>(lf.op))
    return std::nullopt;
  mlir::attn::LinearOpView view(lf.op);
  llvm::DenseMap<mlir::Value, std::string> roles = {
      {view.q, "q"}, {view.k, "k"}, {view.v, "v"}};
  if (view.init)
    roles[view.init] = "initial_state";
  for (auto [i, c] : llvm::enumerate(view.captures))
    roles[c] = "capture" + std::to_string(i);
  mlir::DenseElementsAttr decayConst;
  if (view.decay) {
    if (matchPattern(view.decay, mlir::m_Constant(&decayConst)))
      for (llvm::APFloat f : decayConst.getValues<llvm::APFloat>())
        lf.constDecay.push_back(f.convertToFloat());
    else
      roles[view.decay] = "decay";
  }
  if (roles.size() != func.getNumArguments())
    return std::nullopt;
  for (mlir::BlockArgument a : func.getArguments()) {
    auto it = roles.find(a);
    if (it == roles.end())
      return std::nullopt;
    lf.names.push_back(it->second);
  }
  auto ret = llvm::dyn_cast<mlir::func::ReturnOp>(
      func.getBody().front().getTerminator());
  if (!ret || ret.getNumOperands() != lf.op->getNumResults())
    return std::nullopt;
  for (auto [v, r] : llvm::zip(ret.getOperands(), lf.op->getResults()))
    if (v != r)
      return std::nullopt;
  return lf;
}

/// The names of `params`.
static llvm::SmallVector<std::string>
namesOf(llvm::ArrayRef<ParamInfo> params) {
  llvm::SmallVector<std::string> names;
  for (const ParamInfo &p : params)
    names.push_back(p.name);
  return names;
}

/// A kernel's signature and value checks for its entry.json, in the ABI's
/// form.
static llvm::json::Object signatureJson(const KernelSignature &sig,
                                        const InputChecks &c) {
  return abi::toJson(abiSignature(sig, namesOf(sig.inputs), {}, c));
}

/// What a CPU entry needs besides its object code: the signature and the
/// value checks (a disk hit then needs no spec).
static llvm::json::Object cpuEntryJson(const KernelSignature &sig, bool layout,
                                       const InputChecks &c) {
  llvm::json::Object o = signatureJson(sig, c);
  o["attention_layout"] = layout;
  return o;
}

/// The signature and value checks of an entry written by cpuEntryJson.
static llvm::Error parseCpuEntry(const llvm::json::Object &o,
                                 StringRef function, KernelSignature &sig,
                                 bool &layout, InputChecks &c) {
  auto s = abi::parseSignature(llvm::json::Value(llvm::json::Object(o)));
  if (!s)
    return s.takeError();
  auto ks = kernelSignature(*s, function, "cpu");
  if (!ks)
    return ks.takeError();
  sig = std::move(*ks);
  c = inputChecksOf(s->checks);
  auto l = o.getBoolean("attention_layout");
  if (!l)
    return makeError("entry lacks attention_layout");
  layout = *l;
  return llvm::Error::success();
}

/// manifest.json of a linear-attention / scan kernel's cache entry: one
/// kernel of kind linear with its signature.
llvm::Expected<std::shared_ptr<Kernel>> Compiler::Impl::build(const Job &job) {
  auto func = job.module.lookupSymbol<mlir::func::FuncOp>(job.function);
  if (job.options.target == "cpu") {
    auto sig = cpuSignature(func);
    if (!sig)
      return sig.takeError();
    mlir::attn::CpuPipelineOptions po;
    po.blockQ = job.options.blockQ;
    po.blockKv = job.options.blockKv;
    std::string object;
    auto k = mlir::attn::CpuKernel::compile(
        job.module, job.function, po, cacheDir.empty() ? nullptr : &object);
    if (!k)
      return k.takeError();
    logInfo("compiled '" + job.function + "': cpu kernel (host JIT)");
    bool layout = bool(attentionOf(func));
    InputChecks checks = mlir::attn::specValueChecks(func);
    if (!object.empty())
      store(job, {{"kernel.o", object}}, cpuEntryJson(*sig, layout, checks));
    return std::make_shared<CpuKernelImpl>(std::move(*sig), std::move(*k),
                                           layout, std::move(checks));
  }

  if (!attentionOf(func) && !isAttentionGrad(func)) {
    if (std::optional<LinearFunction> lf = linearOf(func))
      return buildLinear(job, func, *lf);
    return buildProgram(job, func);
  }
  // Code generation rewrites the module: work on a clone.
  mlir::OwningOpRef<mlir::ModuleOp> clone = job.module.clone();
  // Keep only the function being compiled.
  for (auto f : llvm::make_early_inc_range(clone->getOps<mlir::func::FuncOp>()))
    if (f.getName() != job.function)
      f.erase();
  mlir::attn::GpuCompileOptions go;
  go.target = job.options.target;
  go.blockQ = job.options.blockQ;
  go.blockKv = job.options.blockKv;
  go.ptxas = mlir::attn::findCudaToolkit().ptxas;
  auto arts = mlir::attn::compileForGpu(*clone, go);
  if (!arts)
    return arts.takeError();
  const mlir::attn::GpuKernelArtifact &art = arts->front();
  abi::KernelSet set;
  set.generator = "attnc";
  set.target = job.options.target;
  abi::Kernel &kernel = set.kernels.emplace_back(mlir::attn::abiKernelOf(art));
  // abiKernelOf recorded the signature and value checks.
  logInfo("compiled " + describeKernel(kernel, job.options.target));
  llvm::StringMap<std::string> images;
  images[kernel.ptxFile] = art.ptx;
  if (!art.cubin.empty())
    images[kernel.cubinFile] = art.cubin;
  std::string dir;
  if (!cacheDir.empty()) {
    auto files = mlir::attn::aotFiles(art);
    files.push_back({"manifest.json", abi::formatKernelSet(set)});
    store(job, files, llvm::json::Object());
    dir = entryDir(job);
  }
  return makeGpuKernel(set, images, dir);
}

/// A linear-attention / scan function for the GPU: the kernel of
/// convert-attn-linear-to-gpu (and its feature kernel) as PTX with its ABI.
/// Its disk-cache entry is a directory attnc.load reads.
llvm::Expected<std::shared_ptr<Kernel>>
Compiler::Impl::buildLinear(const Job &job, mlir::func::FuncOp func,
                            const LinearFunction &lf) {
  mlir::OwningOpRef<mlir::ModuleOp> clone = job.module.clone();
  for (auto f : llvm::make_early_inc_range(clone->getOps<mlir::func::FuncOp>()))
    if (f.getName() != job.function)
      f.erase();
  std::string diag;
  llvm::raw_string_ostream diagOs(diag);
  mlir::ScopedDiagnosticHandler handler(ctx.get(), [&](mlir::Diagnostic &d) {
    diagOs << d << "\n";
    return mlir::success();
  });
  mlir::attn::registerAttncPipelines();
  {
    // The kernel and its ABI (an attribute of the kernel function, gone
    // once the module is serialized).
    mlir::PassManager pm(ctx.get());
    mlir::attn::addScheduleSelection(pm, job.options.target);
    pm.addPass(mlir::attn::createConvertAttnLinearToGPU());
    if (failed(pm.run(*clone)))
      return makeError("'" + job.function +
                       "': the linear-attention GPU lowering failed:\n" + diag);
  }
  mlir::FailureOr<abi::Kernel> record = mlir::attn::kernelAbiOf(*clone);
  if (failed(record) || record->kind != abi::KernelKind::Linear)
    return makeError("'" + job.function +
                     "': the linear-attention GPU lowering left no kernel ABI");
  const abi::LinearKernel *linear = &record->linear;
  logInfo("compiled '" + job.function + "': " + job.options.target +
          " linear kernel, chunk " + llvm::Twine(linear->chunk) +
          ", value-dim slice " + llvm::Twine(linear->dvSlice));
  {
    mlir::PassManager pm(ctx.get());
    if (failed(mlir::attn::buildCompilePipeline(pm, job.options.target, 0, 0,
                                                "isa",
                                                [&](const llvm::Twine &m) {
                                                  diagOs << m << "\n";
                                                  return mlir::failure();
                                                })) ||
        failed(pm.run(*clone)))
      return makeError("'" + job.function +
                       "': compiling the linear-attention kernel failed:\n" +
                       diag);
  }
  std::string ptx = mlir::attn::binaryPtx(*clone);
  if (ptx.empty())
    return makeError("'" + job.function + "': no PTX was produced");
  auto sig = cpuSignature(func);
  if (!sig)
    return sig.takeError();
  sig->target = job.options.target;
  for (auto [p, n] : llvm::zip(sig->inputs, lf.names))
    p.name = n;
  abi::KernelSet set;
  set.generator = "attnc";
  set.target = job.options.target;
  abi::Kernel &k = set.kernels.emplace_back();
  k.name = job.function;
  k.kind = abi::KernelKind::Linear;
  k.ptxFile = job.function + ".ptx";
  k.linear = std::move(*linear);
  k.signature = abiSignature(*sig, lf.names, lf.constDecay,
                             mlir::attn::specValueChecks(func));
  std::string dir;
  if (!cacheDir.empty()) {
    // The entry is a directory attnc.load reads: the PTX and a manifest
    // with one kernel of kind "linear" (its ABI, signature, input roles,
    // constant decays and value checks; docs/runtime.md).
    store(job, {{k.ptxFile, ptx}, {"manifest.json", abi::formatKernelSet(set)}},
          llvm::json::Object());
    dir = entryDir(job);
  }
  llvm::StringMap<std::string> images;
  images[k.ptxFile] = std::move(ptx);
  return makeGpuKernel(set, images, dir);
}

/// PTX of `out[i] = a[i] <op> b[i]` over flat tensors (16-bit floats
/// computed in f32), one thread per element.
static llvm::Expected<std::string> elementwisePtx(mlir::MLIRContext *ctx,
                                                  mlir::Operation *op,
                                                  llvm::StringRef target) {
  using namespace mlir;
  ctx->loadDialect<gpu::GPUDialect, memref::MemRefDialect, scf::SCFDialect,
                   arith::ArithDialect>();
  Location loc = op->getLoc();
  Type elem =
      cast<RankedTensorType>(op->getResult(0).getType()).getElementType();
  OwningOpRef<ModuleOp> m = ModuleOp::create(loc);
  (*m)->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                UnitAttr::get(ctx));
  OpBuilder b(ctx);
  b.setInsertionPointToEnd(m->getBody());
  auto gm = gpu::GPUModuleOp::create(b, loc, "elementwise");
  b.setInsertionPointToStart(gm.getBody());
  auto mt = MemRefType::get({ShapedType::kDynamic}, elem);
  auto fn = gpu::GPUFuncOp::create(
      b, loc, "elementwise",
      b.getFunctionType({mt, mt, mt, b.getIndexType()}, {}));
  fn->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  Block &entry = fn.getBody().front();
  b.setInsertionPointToStart(&entry);
  Value i = arith::AddIOp::create(
      b, loc,
      arith::MulIOp::create(b, loc,
                            gpu::BlockIdOp::create(b, loc, gpu::Dimension::x),
                            gpu::BlockDimOp::create(b, loc, gpu::Dimension::x)),
      gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x));
  Value in = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, i,
                                   entry.getArgument(3));
  auto ifOp = scf::IfOp::create(b, loc, in, /*withElseRegion=*/false);
  b.setInsertionPointToStart(ifOp.thenBlock());
  Type f32 = b.getF32Type();
  auto load = [&](unsigned a) -> Value {
    Value x = memref::LoadOp::create(b, loc, entry.getArgument(a), i);
    return elem == f32 ? x : arith::ExtFOp::create(b, loc, f32, x).getResult();
  };
  Value x = load(0), y = load(1), r;
  if (isa<arith::AddFOp>(op))
    r = arith::AddFOp::create(b, loc, x, y);
  else if (isa<arith::SubFOp>(op))
    r = arith::SubFOp::create(b, loc, x, y);
  else
    r = arith::MulFOp::create(b, loc, x, y);
  if (elem != f32)
    r = arith::TruncFOp::create(b, loc, elem, r);
  memref::StoreOp::create(b, loc, r, entry.getArgument(2), i);
  b.setInsertionPointToEnd(&entry);
  gpu::ReturnOp::create(b, loc);
  std::string diag;
  llvm::raw_string_ostream os(diag);
  mlir::attn::registerAttncPipelines();
  PassManager pm(ctx);
  mlir::attn::buildGpuBinaryPipeline(pm, target);
  if (failed(pm.run(*m)))
    return makeError("compiling an elementwise kernel failed:\n" + diag);
  std::string ptx = mlir::attn::binaryPtx(*m);
  if (ptx.empty())
    return makeError("no PTX for an elementwise kernel");
  return ptx;
}

/// The elementwise kernel of `op` (addf, subf or mulf on tensors): its PTX
/// and a kernel set of kind "elementwise" in the launch library, taking a,
/// b and o flat and n, the element count, one thread per element.
static llvm::Expected<std::shared_ptr<Kernel>>
elementwiseKernel(mlir::MLIRContext *ctx, mlir::Operation *op,
                  llvm::StringRef target) {
  auto ptx = elementwisePtx(ctx, op, target);
  if (!ptx)
    return ptx.takeError();
  auto type = mlir::cast<mlir::RankedTensorType>(op->getResult(0).getType());
  auto dtype = dtypeOf(type.getElementType());
  if (!dtype)
    return dtype.takeError();
  abi::KernelSet set;
  set.generator = "attnc";
  set.target = target.str();
  abi::Kernel &k = set.kernels.emplace_back();
  k.name = "elementwise";
  k.kind = abi::KernelKind::Elementwise;
  k.ptxFile = "elementwise.ptx";
  abi::Launch &l = k.elementwise;
  l.kernel = "elementwise";
  l.grid = {abi::SizeExpr::of("n", 256), abi::SizeExpr::constant(1),
            abi::SizeExpr::constant(1)};
  l.block = {256, 1, 1};
  std::string elem = dtypeName(*dtype).str();
  for (const char *n : {"a", "b", "o"})
    l.args.push_back({n, abi::ArgKind::Memref, elem, 1, 0});
  l.args.push_back({"n", abi::ArgKind::Scalar, "", 0, 0});
  abi::Signature sig;
  std::vector<int64_t> shape;
  for (int64_t d : type.getShape())
    shape.push_back(mlir::ShapedType::isDynamic(d) ? -1 : d);
  sig.inputs = {{"a", elem, shape}, {"b", elem, shape}};
  sig.outputs = {{"o", elem, shape}};
  sig.inputNames = {"a", "b"};
  k.signature = std::move(sig);
  llvm::StringMap<std::string> images;
  images[k.ptxFile] = std::move(*ptx);
  return makeGpuKernel(set, images, "");
}

/// The non-constant values `op` reads, in first-use order, or failure when
/// one is not an argument of `body`.
static mlir::FailureOr<llvm::SmallVector<mlir::Value>>
attnOpArguments(mlir::Operation &op, mlir::Block &body) {
  llvm::SmallVector<mlir::Value> args;
  for (mlir::Value v : op.getOperands()) {
    if (v.getDefiningOp<mlir::arith::ConstantOp>())
      continue;
    auto arg = mlir::dyn_cast<mlir::BlockArgument>(v);
    if (!arg || arg.getOwner() != &body)
      return mlir::failure();
    if (!llvm::is_contained(args, v))
      args.push_back(v);
  }
  return args;
}

/// A module of one function `name` that takes `args` and returns the results
/// of a clone of `op` (the constants it reads cloned too).
static mlir::OwningOpRef<mlir::ModuleOp>
outlineAttnOp(mlir::MLIRContext *ctx, mlir::Operation &op,
              llvm::ArrayRef<mlir::Value> args, llvm::StringRef name) {
  using namespace mlir;
  Location loc = op.getLoc();
  OwningOpRef<ModuleOp> sub = ModuleOp::create(loc);
  SmallVector<Type> types;
  for (Value a : args)
    types.push_back(a.getType());
  OpBuilder b(ctx);
  b.setInsertionPointToEnd(sub->getBody());
  auto f = func::FuncOp::create(b, loc, name,
                                b.getFunctionType(types, op.getResultTypes()));
  Block *entry = f.addEntryBlock();
  b.setInsertionPointToStart(entry);
  IRMapping map;
  for (auto [a, ba] : llvm::zip(args, entry->getArguments()))
    map.map(a, ba);
  for (Value v : op.getOperands())
    if (auto c = v.getDefiningOp<arith::ConstantOp>())
      if (!map.contains(v))
        map.map(v, b.clone(*c)->getResult(0));
  Operation *cl = b.clone(op, map);
  func::ReturnOp::create(b, loc, cl->getResults());
  return sub;
}

/// The steps of a GPU program and where each value of the function lives
/// (an input, an output or a temporary).
struct Compiler::Impl::ProgramBuilder {
  Impl &impl;
  const Job &job;
  mlir::func::FuncOp func;
  mlir::Block &body;
  GpuProgram prog;
  llvm::DenseMap<mlir::Value, GpuProgram::Ref> where;
  /// The input whose batch and sequence sizes a value has.
  llvm::DenseMap<mlir::Value, unsigned> like;
  std::string typeErr;
  unsigned part = 0;

  ProgramBuilder(Impl &impl, const Job &job, mlir::func::FuncOp func)
      : impl(impl), job(job), func(func), body(func.getBody().front()) {}

  llvm::Error refuse(const llvm::Twine &why) const {
    return makeError("'" + job.function +
                     "': GPU targets compile functions of attn ops "
                     "(attention, linear attention, scans) on the "
                     "function's arguments, combined by elementwise addf, "
                     "subf or mulf on tensors: " +
                     why);
  }

  /// Arguments are inputs, returned values outputs.
  llvm::Error mapArgumentsAndResults() {
    for (auto [i, a] : llvm::enumerate(func.getArguments())) {
      where[a] = {GpuProgram::Ref::Input, unsigned(i)};
      like[a] = unsigned(i);
    }
    for (auto [j, v] : llvm::enumerate(body.getTerminator()->getOperands())) {
      if (where.count(v))
        return refuse("result " + llvm::Twine(j) +
                      " is an argument or returned twice");
      where[v] = {GpuProgram::Ref::Output, unsigned(j)};
    }
    return llvm::Error::success();
  }

  /// Where the result `v` goes: its output, or a new temporary.
  GpuProgram::Ref resultRef(mlir::Value v, unsigned likeInput) {
    like[v] = likeInput;
    auto it = where.find(v);
    if (it != where.end())
      return it->second;
    auto rt = mlir::cast<mlir::RankedTensorType>(v.getType());
    GpuProgram::Temp t;
    auto dt = dtypeOf(rt.getElementType());
    if (!dt)
      typeErr = llvm::toString(dt.takeError());
    else
      t.dtype = *dt;
    for (int64_t n : rt.getShape())
      t.shape.push_back(mlir::ShapedType::isDynamic(n) ? -1 : n);
    t.like = likeInput;
    prog.temps.push_back(t);
    GpuProgram::Ref r{GpuProgram::Ref::Temp, unsigned(prog.temps.size() - 1)};
    where[v] = r;
    return r;
  }

  /// The attn op alone, on the arguments it reads, compiled as a part.
  llvm::Error addAttnStep(mlir::Operation &op) {
    auto args = attnOpArguments(op, body);
    if (mlir::failed(args))
      return refuse("'" + op.getName().getStringRef() +
                    "' reads a value that is not an argument");
    std::string name = job.function + "_part" + std::to_string(part++);
    mlir::OwningOpRef<mlir::ModuleOp> sub =
        outlineAttnOp(impl.ctx.get(), op, *args, name);
    Job subJob;
    subJob.options = job.options;
    subJob.options.function = name;
    subJob.function = name;
    subJob.module = *sub;
    subJob.key = job.key;
    auto k = impl.build(subJob);
    if (!k)
      return k.takeError();
    GpuProgram::Step st;
    st.kernel = *k;
    unsigned q = where[args->front()].index;
    for (mlir::Value a : *args)
      st.ins.push_back(where[a]);
    for (mlir::Value r : op.getResults())
      st.outs.push_back(resultRef(r, q));
    prog.steps.push_back(std::move(st));
    return llvm::Error::success();
  }

  /// addf, subf or mulf on tensors as an elementwise kernel.
  llvm::Error addElementwiseStep(mlir::Operation &op) {
    GpuProgram::Step st;
    for (mlir::Value v : op.getOperands()) {
      if (!where.count(v))
        return refuse("an operand of '" + op.getName().getStringRef() +
                      "' is not an argument or a computed tensor");
      st.ins.push_back(where[v]);
    }
    auto kernel = elementwiseKernel(impl.ctx.get(), &op, job.options.target);
    if (!kernel)
      return kernel.takeError();
    st.kernel = std::move(*kernel);
    st.outs.push_back(resultRef(op.getResult(0), like[op.getOperand(0)]));
    prog.steps.push_back(std::move(st));
    return llvm::Error::success();
  }

  llvm::Error addSteps() {
    using namespace mlir;
    for (Operation &op : body.without_terminator()) {
      if (isa<arith::ConstantOp>(op))
        continue; // cloned into the parts that use it
      if (isa<attn::AttentionOp, attn::LinearAttentionOp, attn::ScanOp>(op)) {
        if (llvm::Error err = addAttnStep(op))
          return err;
        continue;
      }
      if (isa<arith::AddFOp, arith::SubFOp, arith::MulFOp>(op) &&
          isa<RankedTensorType>(op.getResult(0).getType())) {
        if (llvm::Error err = addElementwiseStep(op))
          return err;
        continue;
      }
      return refuse("'" + op.getName().getStringRef() +
                    "' cannot run in a GPU program");
    }
    if (!typeErr.empty())
      return refuse(typeErr);
    return llvm::Error::success();
  }

  /// Every result must be written by a step (a returned constant is not).
  llvm::Error checkResultsWritten() const {
    unsigned numResults = body.getTerminator()->getNumOperands();
    llvm::SmallVector<bool> written(numResults, false);
    for (const GpuProgram::Step &st : prog.steps)
      for (GpuProgram::Ref r : st.outs)
        if (r.kind == GpuProgram::Ref::Output)
          written[r.index] = true;
    for (auto [j, w] : llvm::enumerate(written))
      if (!w)
        return refuse("result " + llvm::Twine(j) +
                      " is not computed by an attn op or an elementwise op");
    return llvm::Error::success();
  }
};

/// A function of several attn ops (or of one attn op not in the single-op
/// forms) for a GPU: one kernel per attn op and elementwise kernels for
/// addf, subf and mulf on tensors. Not written to the disk cache.
llvm::Expected<std::shared_ptr<Kernel>>
Compiler::Impl::buildProgram(const Job &job, mlir::func::FuncOp func) {
  ProgramBuilder pb(*this, job, func);
  if (llvm::Error err = pb.mapArgumentsAndResults())
    return std::move(err);
  // The parts are not cached on disk: their entries would be indexed by
  // this spec's raw key.
  std::string savedCacheDir = cacheDir;
  cacheDir.clear();
  llvm::scope_exit restore([&] { cacheDir = savedCacheDir; });
  if (llvm::Error err = pb.addSteps())
    return std::move(err);
  if (llvm::Error err = pb.checkResultsWritten())
    return std::move(err);
  auto sig = cpuSignature(func);
  if (!sig)
    return sig.takeError();
  sig->target = job.options.target;
  logInfo("compiled '" + job.function + "': " + job.options.target +
          " program of " + llvm::Twine(pb.prog.steps.size()) + " kernels");
  return std::make_shared<GpuProgramImpl>(std::move(*sig), std::move(pb.prog));
}

/// The kernel of a GPU entry: its manifest.json, read by the ABI, describes
/// one kernel, `function`, with its signature and value checks.
static llvm::Expected<std::shared_ptr<Kernel>>
loadGpuEntry(StringRef function, StringRef target,
             const llvm::StringMap<std::string> &contents, StringRef dir) {
  auto m = contents.find("manifest.json");
  if (m == contents.end())
    return makeError("no manifest.json");
  auto set = abi::parseKernelSetText(m->second);
  if (!set)
    return set.takeError();
  if (set->target != target || set->kernels.size() != 1 ||
      set->kernels.front().name != function || !set->kernels.front().signature)
    return makeError("the manifest does not describe '" + function + "'");
  logInfo("loaded " + describeKernel(set->kernels.front(), target));
  return makeGpuKernel(*set, contents, dir);
}

llvm::Expected<std::shared_ptr<Kernel>>
Compiler::Impl::kernelOf(const DiskEntry &entry, StringRef function,
                         StringRef target) {
  const llvm::json::Object *obj = &entry.meta;
  std::string fn = obj->getString("function").value_or("").str();
  if (fn.empty() || (!function.empty() && fn != function) ||
      obj->getString("target") != target)
    return makeError("the entry is for another function or target");
  function = fn;
  const llvm::StringMap<std::string> &contents = entry.contents;
  if (target != "cpu")
    return loadGpuEntry(function, target, contents, entry.dir);
  auto it = contents.find("kernel.o");
  if (it == contents.end())
    return makeError("no kernel.o");
  KernelSignature sig;
  bool layout = false;
  InputChecks checks;
  if (llvm::Error e = parseCpuEntry(*obj, function, sig, layout, checks))
    return std::move(e);
  auto k = mlir::attn::CpuKernel::load(it->second, function);
  if (!k)
    return k.takeError();
  return std::make_shared<CpuKernelImpl>(std::move(sig), std::move(*k), layout,
                                         std::move(checks));
}
