//! `docker top`: the host's `ps` output, narrowed to a container's processes (moby's
//! `parsePSOutput`: find the PID column, keep rows whose pid is the container's).

use crate::error::{ContainerError, Result};

pub fn parse_ps(output: &str, pids: &[i32]) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = output.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .ok_or_else(|| ContainerError::Invalid("ps printed nothing".into()))?;
    let titles: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| ContainerError::Invalid("Couldn't find PID field in ps output".into()))?;
    let mut procs = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column (the command) may contain spaces: it takes the rest of the line.
        let mut row: Vec<String> = fields[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(fields[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok((titles, procs))
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_containers_rows() {
        let out = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\nroot 4242 4200 0 10:01 ? 00:00:00 sleep 100\n";
        let (titles, procs) = super::parse_ps(out, &[4242]).unwrap();
        assert_eq!(titles.len(), 8);
        assert_eq!(
            procs,
            vec![vec![
                "root",
                "4242",
                "4200",
                "0",
                "10:01",
                "?",
                "00:00:00",
                "sleep 100"
            ]]
        );
    }
}
