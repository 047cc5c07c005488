-- The MariaDB account read tasks connect with: 'cloud_agent_read'@'%'.
--
-- Run as an administrator with the mysql client, after setting the password and the databases
-- it may read (comma-separated), e.g.:
--
--   { echo "SET @read_password = 'SECRET', @read_databases = 'app,sessions';"; cat mariadb.sql; } | mysql -u root
--
-- scripts/create-read-accounts.sh does this for the local server. Re-running is harmless: the
-- account's rights are revoked and granted again, so it ends with exactly these (and loses any
-- granted by hand since). MariaDB only (the loop is a BEGIN NOT ATOMIC block); on MySQL 8 write
-- one GRANT SELECT line per database instead.
--
-- The rights, and why nothing more:
--   * PROCESS: SHOW [FULL] PROCESSLIST and information_schema.processlist show every session, not
--     only the account's own; it does not allow KILL of other sessions (that needs SUPER or
--     CONNECTION ADMIN).
--   * REPLICATION CLIENT (shown as BINLOG MONITOR on MariaDB 10.5+): SHOW MASTER/BINARY LOG
--     status, read-only.
--   * SELECT on the listed databases and on performance_schema (statement digests, waits), not
--     ON *.*: that would include the mysql schema and its password hashes.
--   * Nothing else: no INSERT/UPDATE/DELETE, no FILE (INTO OUTFILE, LOAD_FILE), no SUPER (SET
--     GLOBAL, KILL), no GRANT OPTION. The executor checks SHOW GRANTS at first use and warns if
--     the account has more.

CREATE USER IF NOT EXISTS 'cloud_agent_read'@'%';
SET @statement = CONCAT('ALTER USER ''cloud_agent_read''@''%'' IDENTIFIED BY ', QUOTE(@read_password));
PREPARE statement FROM @statement;
EXECUTE statement;
DEALLOCATE PREPARE statement;

REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'cloud_agent_read'@'%';
GRANT PROCESS, REPLICATION CLIENT ON *.* TO 'cloud_agent_read'@'%';
GRANT SELECT ON performance_schema.* TO 'cloud_agent_read'@'%';

DELIMITER //
BEGIN NOT ATOMIC
    DECLARE remaining TEXT DEFAULT CONCAT(IFNULL(@read_databases, ''), ',');
    DECLARE database_name TEXT;
    WHILE remaining <> '' DO
        SET database_name = TRIM(SUBSTRING_INDEX(remaining, ',', 1));
        SET remaining = SUBSTRING(remaining, LENGTH(SUBSTRING_INDEX(remaining, ',', 1)) + 2);
        IF database_name <> '' THEN
            SET @statement = CONCAT(
                'GRANT SELECT ON `', REPLACE(database_name, '`', '``'), '`.* TO ''cloud_agent_read''@''%''');
            PREPARE statement FROM @statement;
            EXECUTE statement;
            DEALLOCATE PREPARE statement;
        END IF;
    END WHILE;
END//
DELIMITER ;
