# What `cmake --install` puts under the prefix: the three programs, and the client library with
# the headers and CMake package a project outside this tree needs to use it (docs/client.md,
# "Using the library from your own project"). Test, test-support and micro-benchmark targets are
# not installed.
include(GNUInstallDirs)

# Each program is built only when its sources are present (server/, bench/load/).
foreach(program jifend jifen jifen-bench)
  if(TARGET ${program})
    install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

# The headers keep their paths from the root, because they include each other that way
# ("client/client.hpp" includes "protocol/wire.hpp"); jifen/ keeps the generic names client/ and
# protocol/ out of the prefix's include/. Inside the tree, targets use include views instead
# (cmake/JifenTargets.cmake), so this directory is for installed consumers only.
set(jifen_include_dir ${CMAKE_INSTALL_INCLUDEDIR}/jifen)
target_include_directories(jifen_client INTERFACE $<INSTALL_INTERFACE:${jifen_include_dir}>)
# The headers need C++20 (std::span, <bit>): a consumer gets at least that standard.
target_compile_features(jifen_client PUBLIC cxx_std_20)
set_target_properties(jifen_client PROPERTIES EXPORT_NAME client)  # jifen::client

install(TARGETS jifen_client EXPORT jifen_client_targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/client/ DESTINATION ${jifen_include_dir}/client
        FILES_MATCHING PATTERN "*.hpp" PATTERN cli EXCLUDE)  # cli/: the jifen tool's, not public
install(DIRECTORY ${CMAKE_SOURCE_DIR}/protocol/ DESTINATION ${jifen_include_dir}/protocol
        FILES_MATCHING PATTERN "*.hpp")

# find_package(jifen_client) loads jifen_clientConfig.cmake, which finds the dependencies the
# exported target names, then the target itself.
set(jifen_package_dir ${CMAKE_INSTALL_LIBDIR}/cmake/jifen_client)
install(EXPORT jifen_client_targets NAMESPACE jifen:: FILE jifen_clientTargets.cmake
        DESTINATION ${jifen_package_dir})
include(CMakePackageConfigHelpers)
# Before 1.0 a minor release may change the API, so only the same major.minor is compatible.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/jifen_clientConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/jifen_clientConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/jifen_clientConfigVersion.cmake
        DESTINATION ${jifen_package_dir})
