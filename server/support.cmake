# jifend's edges: configuration (simdjson), API keys (OpenSSL), TLS (Asio SSL) and the HTTP admin
# port (Beast, confined to http_admin.cpp because it is slow to compile).
add_library(jifen_server_support STATIC
  ${CMAKE_CURRENT_LIST_DIR}/config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/auth.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tls.cpp
  ${CMAKE_CURRENT_LIST_DIR}/http_admin.cpp)
jifen_include_view(jifen_server_support server wal engine protocol)
target_link_libraries(jifen_server_support PUBLIC
  simdjson::simdjson OpenSSL::SSL OpenSSL::Crypto Boost::headers spdlog::spdlog fmt::fmt
  Threads::Threads)
