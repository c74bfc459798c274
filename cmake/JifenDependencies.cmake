# Finds every dependency among Debian 12 packages; a missing one names the apt package to install.
# Nothing is downloaded at configure or build time.

function(jifen_require found package)
  if(NOT ${found})
    message(FATAL_ERROR "jifen: missing dependency. Install it with: sudo apt-get install ${package}")
  endif()
endfunction()

find_package(Threads REQUIRED)

find_package(Boost 1.81 CONFIG QUIET)
jifen_require(Boost_FOUND libboost1.81-dev)

find_path(LMDB_INCLUDE_DIR lmdb.h)
find_library(LMDB_LIBRARY lmdb)
if(LMDB_INCLUDE_DIR AND LMDB_LIBRARY)
  set(LMDB_FOUND TRUE)
  add_library(lmdb::lmdb UNKNOWN IMPORTED)
  set_target_properties(lmdb::lmdb PROPERTIES IMPORTED_LOCATION ${LMDB_LIBRARY}
                        INTERFACE_INCLUDE_DIRECTORIES ${LMDB_INCLUDE_DIR})
endif()
jifen_require(LMDB_FOUND liblmdb-dev)

find_package(simdjson CONFIG QUIET)
jifen_require(simdjson_FOUND libsimdjson-dev)

find_package(OpenSSL QUIET)
jifen_require(OPENSSL_FOUND libssl-dev)

find_package(CLI11 CONFIG QUIET)
jifen_require(CLI11_FOUND libcli11-dev)

find_package(fmt CONFIG QUIET)
jifen_require(fmt_FOUND libfmt-dev)

find_package(spdlog CONFIG QUIET)
jifen_require(spdlog_FOUND libspdlog-dev)

find_package(GTest CONFIG QUIET)
jifen_require(GTest_FOUND "libgtest-dev libgmock-dev")

find_package(benchmark CONFIG QUIET)
jifen_require(benchmark_FOUND libbenchmark-dev)
