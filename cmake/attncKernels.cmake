# attnc_add_kernels: GPU attention kernels from attn specs, built with the
# installed attn-aot at build time. Included by attncConfig.cmake.
#
#   attnc_add_kernels(<target> SPECS a.mlir [b.mlir ...]
#                     [ARCH sm_80|sm_90a] [BLOCK_Q n] [BLOCK_KV n])
#
# For each spec, attn-aot writes into
# ${CMAKE_CURRENT_BINARY_DIR}/attnc_kernels/<spec name without .mlir>/ one
# kernel per func.func holding an attn.attention: <fn>.h, <fn>_launcher.c,
# <fn>.ptx, <fn>.cubin, and a manifest.json. The function names are read from
# the spec at configure time (editing the spec reconfigures).
#
# <target> (an executable or library defined in the calling directory) gets
#   - the <fn>_launcher.c files as sources (plain C: enable C in project());
#   - each output directory as a PUBLIC include directory (build tree only),
#     so that <target> and the targets linking it can #include "<fn>.h";
#   - ${CMAKE_DL_LIBS}, PRIVATE: the launchers dlopen libcuda.so.1 at run
#     time; neither the CUDA headers nor -lcuda are needed.
#
# ARCH (default sm_80): a cubin loads only on its GPU generation: sm_80 on
# sm_8x (A100, A10, L4, RTX 30/40), sm_90a on sm_90 (H100, H200); elsewhere a
# launch returns 209 (CUDA_ERROR_NO_BINARY_FOR_GPU).
# BLOCK_Q / BLOCK_KV: tile sizes passed to attn-aot (default: its schedule).
# ptxas (CUDA toolkit) is needed at build time: the cache variable
# ATTNC_PTXAS, else found in $CUDA_HOME/bin, /usr/local/cuda/bin or PATH.

include_guard(GLOBAL)

# Set by attncConfig.cmake; kept global so that attnc_add_kernels works in
# any directory, not only where find_package(attnc) was called.
if(ATTNC_AOT_EXECUTABLE)
  set_property(GLOBAL PROPERTY ATTNC_AOT_EXECUTABLE "${ATTNC_AOT_EXECUTABLE}")
endif()

# The names of the functions of `spec` that hold an attn.attention (attn-aot
# makes one kernel, named after the function, for each).
function(_attnc_kernel_names spec out_var)
  file(READ "${spec}" text)
  # Comments out, and the characters that CMake lists treat specially.
  string(REGEX REPLACE "//[^\n]*" "" text "${text}")
  foreach(c "\\" "[" "]" ";")
    string(REPLACE "${c}" " " text "${text}")
  endforeach()
  # Split before every function: "<pre>;<fn>NAME;<body>;<fn>NAME;<body>...".
  string(REGEX REPLACE
    "func\\.func[ \t\r\n]+((public|private|nested)[ \t\r\n]+)?@([A-Za-z0-9_$.]+)"
    ";<fn>\\3;" parts "${text}")
  set(names)
  set(current)
  foreach(part IN LISTS parts)
    if(part MATCHES "^<fn>(.*)$")
      set(current "${CMAKE_MATCH_1}")
    elseif(current)
      string(FIND "${part}" "attn.attention" at)
      if(at GREATER -1)
        list(APPEND names "${current}")
      endif()
      set(current)
    endif()
  endforeach()
  set(${out_var} "${names}" PARENT_SCOPE)
endfunction()

function(attnc_add_kernels target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "ARCH;BLOCK_Q;BLOCK_KV" "SPECS")
  set(fn "attnc_add_kernels(${target})")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "${fn}: unexpected arguments: ${arg_UNPARSED_ARGUMENTS}"
      " (expected SPECS a.mlir... [ARCH sm_80|sm_90a] [BLOCK_Q n] [BLOCK_KV n])")
  endif()
  if(arg_KEYWORDS_MISSING_VALUES)
    message(FATAL_ERROR "${fn}: no value given after ${arg_KEYWORDS_MISSING_VALUES}")
  endif()
  if(NOT TARGET "${target}")
    message(FATAL_ERROR "${fn}: there is no target '${target}' (create it with "
      "add_executable or add_library first)")
  endif()
  get_target_property(type "${target}" TYPE)
  get_target_property(imported "${target}" IMPORTED)
  get_target_property(aliased "${target}" ALIASED_TARGET)
  if(imported OR aliased OR NOT type MATCHES
     "^(EXECUTABLE|STATIC_LIBRARY|SHARED_LIBRARY|MODULE_LIBRARY|OBJECT_LIBRARY)$")
    message(FATAL_ERROR "${fn}: '${target}' must be an executable or library "
      "built by this project")
  endif()
  get_target_property(target_dir "${target}" SOURCE_DIR)
  if(NOT target_dir STREQUAL CMAKE_CURRENT_SOURCE_DIR)
    message(FATAL_ERROR "${fn}: call it in the directory that defines "
      "'${target}' (${target_dir}): the build rules of generated sources "
      "belong to that directory")
  endif()

  if(NOT DEFINED arg_ARCH)
    set(arg_ARCH sm_80)
  endif()
  if(NOT arg_ARCH MATCHES "^(sm_80|sm_90a)$")
    message(FATAL_ERROR "${fn}: ARCH '${arg_ARCH}' is not supported: use sm_80 "
      "(A100, A10, L4, RTX 30/40) or sm_90a (H100, H200)")
  endif()
  set(tiles)
  foreach(opt BLOCK_Q BLOCK_KV)
    if(DEFINED arg_${opt})
      if(NOT arg_${opt} MATCHES "^[1-9][0-9]*$")
        message(FATAL_ERROR "${fn}: ${opt} must be a positive integer, not "
          "'${arg_${opt}}'")
      endif()
      string(TOLOWER "${opt}" flag)
      string(REPLACE "_" "-" flag "${flag}")
      list(APPEND tiles "--${flag}" "${arg_${opt}}")
    endif()
  endforeach()
  if(NOT arg_SPECS)
    message(FATAL_ERROR "${fn}: no SPECS given")
  endif()

  get_property(aot GLOBAL PROPERTY ATTNC_AOT_EXECUTABLE)
  if(NOT aot OR NOT EXISTS "${aot}")
    message(FATAL_ERROR "${fn}: attn-aot not found ('${aot}'): use "
      "find_package(attnc) to load attnc_add_kernels")
  endif()
  if(NOT ATTNC_PTXAS)
    set(hints)
    if(DEFINED ENV{CUDA_HOME})
      list(APPEND hints "$ENV{CUDA_HOME}/bin")
    endif()
    find_program(ATTNC_PTXAS ptxas HINTS ${hints} /usr/local/cuda/bin
      DOC "ptxas (CUDA toolkit) with which attn-aot assembles the kernels")
  endif()
  if(NOT ATTNC_PTXAS)
    message(FATAL_ERROR "${fn}: ptxas (CUDA toolkit) not found; attn-aot needs "
      "it to build the kernels. Set CUDA_HOME or -DATTNC_PTXAS=/path/to/ptxas")
  endif()
  get_property(languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(NOT "C" IN_LIST languages)
    message(FATAL_ERROR "${fn}: the generated launchers are C: enable C in "
      "project(), e.g. project(app LANGUAGES C CXX)")
  endif()

  get_property(used_dirs DIRECTORY PROPERTY ATTNC_KERNEL_DIRS)
  get_property(target_kernels TARGET "${target}" PROPERTY ATTNC_KERNELS)
  foreach(spec IN LISTS arg_SPECS)
    get_filename_component(spec "${spec}" ABSOLUTE)
    if(NOT EXISTS "${spec}" OR IS_DIRECTORY "${spec}")
      message(FATAL_ERROR "${fn}: spec file '${spec}' does not exist")
    endif()
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${spec}")
    _attnc_kernel_names("${spec}" kernels)
    if(NOT kernels)
      message(FATAL_ERROR "${fn}: spec '${spec}' has no func.func holding an "
        "attn.attention (attn-aot makes one kernel per such function)")
    endif()

    get_filename_component(name "${spec}" NAME_WLE)
    set(dir "${CMAKE_CURRENT_BINARY_DIR}/attnc_kernels/${name}")
    if(dir IN_LIST used_dirs)
      message(FATAL_ERROR "${fn}: a spec named '${name}' was already compiled "
        "in this directory (into ${dir}): rename one, or build the kernels "
        "once in a library that the targets link")
    endif()
    list(APPEND used_dirs "${dir}")

    set(outputs "${dir}/manifest.json")
    set(launchers)
    foreach(kernel IN LISTS kernels)
      if(kernel IN_LIST target_kernels)
        message(FATAL_ERROR "${fn}: two specs define a kernel '@${kernel}': "
          "its C symbols (attnc_${kernel}_launch) would clash")
      endif()
      list(APPEND target_kernels "${kernel}")
      list(APPEND launchers "${dir}/${kernel}_launcher.c")
      list(APPEND outputs "${dir}/${kernel}.h" "${dir}/${kernel}.ptx"
                          "${dir}/${kernel}.cubin")
    endforeach()
    list(JOIN kernels " " kernel_list)
    # The directory is recreated so that kernels of renamed functions go.
    add_custom_command(
      OUTPUT ${launchers} ${outputs}
      COMMAND "${CMAKE_COMMAND}" -E rm -rf "${dir}"
      COMMAND "${aot}" "${spec}" --target=${arg_ARCH} ${tiles}
              "--ptxas=${ATTNC_PTXAS}" -o "${dir}"
      DEPENDS "${spec}" "${aot}"
      COMMENT "attn-aot ${name}.mlir (${arg_ARCH}): ${kernel_list}"
      VERBATIM)
    target_sources("${target}" PRIVATE ${launchers})
    target_include_directories("${target}" PUBLIC "$<BUILD_INTERFACE:${dir}>")
  endforeach()
  set_property(DIRECTORY PROPERTY ATTNC_KERNEL_DIRS "${used_dirs}")
  set_property(TARGET "${target}" PROPERTY ATTNC_KERNELS "${target_kernels}")
  # The launchers are thin wrappers over the launch library.
  target_link_libraries("${target}" PRIVATE attnc::runtime)
endfunction()
