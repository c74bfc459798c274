# Compiler flags, sanitizers, and include views: each target sees only the source directories it
# may use (docs/architecture.md), so a wrong include such as engine -> wal fails to build.

add_compile_options(-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wswitch-enum)
if(JIFEN_WERROR)
  add_compile_options(-Werror)
endif()

if(JIFEN_SANITIZE)
  add_compile_options(-fsanitize=${JIFEN_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${JIFEN_SANITIZE})
  add_compile_definitions(JIFEN_SANITIZE=1)
  # GCC 12's flow analysis gives false maybe-uninitialized warnings inside libstdc++ (std::regex,
  # std::function) once sanitizer instrumentation is on; plain builds keep the warning as an error.
  add_compile_options(-Wno-error=maybe-uninitialized)
  if(JIFEN_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # Asio's headers use atomic_thread_fence, which GCC warns TSan cannot see (-Wtsan); the
    # warning is about Asio's internals, not ours, so it must not fail a -Werror build.
    add_compile_options(-Wno-error=tsan -Wno-tsan)
  endif()
endif()

# jifen_include_view(target dir...): gives target an include root holding only the named
# top-level directories (as symlinks), so `#include "engine/shard.hpp"` resolves only where
# engine/ is allowed.
function(jifen_include_view target)
  set(view ${CMAKE_BINARY_DIR}/include-views/${target})
  file(MAKE_DIRECTORY ${view})
  foreach(dir ${ARGN})
    if(NOT EXISTS ${view}/${dir})
      file(CREATE_LINK ${CMAKE_SOURCE_DIR}/${dir} ${view}/${dir} SYMBOLIC)
    endif()
  endforeach()
  target_include_directories(${target} PRIVATE ${view})
endfunction()
