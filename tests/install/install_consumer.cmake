# Run by the install_consumer test (tests/install/CMakeLists.txt) with cmake -P.
# Inputs: BUILD_DIR CONFIG SCRATCH_DIR CONSUMER_DIR GENERATOR CXX_COMPILER SANITIZE.
cmake_minimum_required(VERSION 3.25)

set(prefix ${SCRATCH_DIR}/prefix)
file(REMOVE_RECURSE ${SCRATCH_DIR})  # what is in the prefix afterwards is what this install put there

execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --config ${CONFIG} --prefix ${prefix}
                OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)

# Exactly the programs, the library, its headers and its package: no test or test-only target.
# (The consumer build below proves the headers and the package are enough.)
foreach(required bin/jifend bin/jifen bin/jifen-bench lib/libjifen_client.a
                 lib/cmake/jifen_client/jifen_clientConfig.cmake)
  if(NOT EXISTS ${prefix}/${required})
    message(FATAL_ERROR "install: ${required} is missing")
  endif()
endforeach()
file(GLOB_RECURSE installed RELATIVE ${prefix} ${prefix}/*)
foreach(file ${installed})
  if(NOT file MATCHES "^(bin/(jifend|jifen|jifen-bench)|lib/libjifen_client\\.a|lib/cmake/jifen_client/[^/]+\\.cmake|include/jifen/(client|protocol)/[^/]+\\.hpp)$")
    message(FATAL_ERROR "install: ${file} should not be installed")
  endif()
endforeach()

# An instrumented library links only into an instrumented program.
set(sanitize_flags "")
if(SANITIZE)
  set(sanitize_flags -DCMAKE_CXX_FLAGS=-fsanitize=${SANITIZE}
                     -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=${SANITIZE})
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${SCRATCH_DIR}/build -G ${GENERATOR}
                        -DCMAKE_BUILD_TYPE=${CONFIG} -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
                        -DCMAKE_PREFIX_PATH=${prefix} ${sanitize_flags}
                COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${CMAKE_COMMAND} --build ${SCRATCH_DIR}/build --config ${CONFIG}
                COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${SCRATCH_DIR}/build/consumer COMMAND_ERROR_IS_FATAL ANY)
