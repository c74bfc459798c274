# jifend's core: shard threads, connections, routing, log integration, main().
# The support library (config, keys, TLS, HTTP admin) comes from support.cmake.
if(TARGET jifen_engine AND TARGET jifen_wal AND TARGET jifen_server_support)
  add_library(jifen_server_core STATIC
    ${CMAKE_CURRENT_LIST_DIR}/connection.cpp
    ${CMAKE_CURRENT_LIST_DIR}/dispatch.cpp
    ${CMAKE_CURRENT_LIST_DIR}/history_reader.cpp
    ${CMAKE_CURRENT_LIST_DIR}/server.cpp
    ${CMAKE_CURRENT_LIST_DIR}/shard_thread.cpp)
  jifen_include_view(jifen_server_core server wal engine protocol)
  target_link_libraries(jifen_server_core PUBLIC
    jifen_server_support jifen_wal jifen_engine Boost::headers OpenSSL::SSL CLI11::CLI11
    spdlog::spdlog fmt::fmt Threads::Threads)

  add_executable(jifend ${CMAKE_CURRENT_LIST_DIR}/main.cpp)
  jifen_include_view(jifend server wal engine protocol)
  target_link_libraries(jifend PRIVATE jifen_server_core)
endif()
