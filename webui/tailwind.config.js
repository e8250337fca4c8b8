/** Tailwind scans the template and the script for the classes they use. */
module.exports = {
  content: ["./templates/**/*.html", "./static/**/*.js"],
  theme: { extend: {} },
  plugins: [],
};
