# Tests of jifend's edges: configuration, API keys, TLS and the HTTP admin port.
jifen_test(server_support_tests
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/support_config_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/support_auth_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/support_http_admin_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/support_memory_guard_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/support_tls_test.cpp
  VIEW server wal engine protocol
  LIBS jifen_server_support)
