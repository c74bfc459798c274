# Package file of the installed jifen client library (cmake/JifenInstall.cmake):
#   find_package(jifen_client REQUIRED)
#   target_link_libraries(app PRIVATE jifen::client)
# jifen::client links these imported targets, so they must exist before it is defined. The Boost
# version is the one cmake/JifenDependencies.cmake requires.
include(CMakeFindDependencyMacro)
find_dependency(Threads)
find_dependency(Boost 1.81 CONFIG)
find_dependency(OpenSSL)

include(${CMAKE_CURRENT_LIST_DIR}/jifen_clientTargets.cmake)
