"""旺店通·企业奇门 (WDT Enterprise through the Qimen gateway): signing, calls, paging."""
