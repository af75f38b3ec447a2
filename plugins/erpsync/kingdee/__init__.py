"""金蝶云星空 (Kingdee K/3 Cloud) WebAPI: signing, sessions, bill look-up and BatchSave."""
