//===- AbiCheck.cpp - validate manifest.json files with AttncAbi ----------===//
//
// Part of attnc's tests. Links AttncAbi and LLVMSupport only (no MLIR): reads
// each manifest.json given, checks it with the ABI reader and that writing
// and reading it again gives the same kernel set, and prints its launches.
//
//===----------------------------------------------------------------------===//

#include "attnc/Abi/KernelSet.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

using namespace attnc::abi;

static bool check(llvm::StringRef path) {
  auto buf = llvm::MemoryBuffer::getFile(path);
  if (!buf) {
    llvm::errs() << path << ": " << buf.getError().message() << "\n";
    return false;
  }
  llvm::Expected<KernelSet> set = parseKernelSetText((*buf)->getBuffer());
  if (!set) {
    llvm::errs() << path << ": " << llvm::toString(set.takeError()) << "\n";
    return false;
  }
  llvm::Expected<KernelSet> again = parseKernelSet(toJson(*set));
  if (!again || !(*again == *set)) {
    if (!again)
      llvm::consumeError(again.takeError());
    llvm::errs() << path << ": does not survive a write and read\n";
    return false;
  }
  llvm::outs() << "OK " << set->target << "\n";
  for (const Kernel &k : set->kernels) {
    llvm::outs() << "  " << stringify(k.kind) << " " << k.name << ":";
    for (const Launch *l : launchSequence(k))
      llvm::outs() << " " << l->kernel << "(" << l->args.size() << " args)";
    llvm::outs() << "\n";
  }
  return true;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    llvm::errs() << "usage: attnc-abi-check manifest.json...\n";
    return 2;
  }
  bool ok = true;
  for (int i = 1; i < argc; ++i)
    ok &= check(argv[i]);
  return ok ? 0 : 1;
}
